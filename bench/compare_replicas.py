#!/usr/bin/env python3
"""Compare two replicas.csv files (e.g. the CUDA and CPU backends' runs of one config).

Prints, per numeric column, how many rows differ in their bits and the largest relative
difference; exits 1 if the files have different columns or replicas, no replica, a replica
twice, or a difference above --tol. Standard library only: it runs on the bare GPU machine.
"""
import argparse
import csv
import math
import sys


def read(path):
    """(replica id -> row, the header); None and a message when the file cannot be compared."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        columns = reader.fieldnames or []
    if "replica" not in columns:
        return None, f"{path}: no 'replica' column"
    if not rows:
        return None, f"{path}: no replicas"
    by_id = {r["replica"]: r for r in rows}
    if len(by_id) != len(rows):
        return None, f"{path}: {len(rows) - len(by_id)} replica id(s) repeated"
    return (by_id, columns), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--tol", type=float, default=1e-3, help="largest relative difference allowed")
    args = parser.parse_args()
    files = []
    for path in (args.a, args.b):
        content, problem = read(path)
        if problem:
            print(problem)
            return 1
        files.append(content)
    (a, columns), (b, columns_b) = files
    if columns != columns_b:
        print(f"different columns: {args.a} has {','.join(columns)}; {args.b} has {','.join(columns_b)}")
        return 1
    if a.keys() != b.keys():
        print(f"different replicas: {len(a.keys() - b.keys())} only in {args.a}, {len(b.keys() - a.keys())} only in {args.b}")
        return 1
    worst_overall = 0.0
    print(f"{len(a)} replicas")
    for column in columns:
        differing, worst = 0, 0.0
        numeric = True
        for key, row in a.items():
            x, y = row[column], b[key][column]
            if x == y:
                continue
            differing += 1
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                numeric = False
                continue
            if math.isnan(fx) or math.isnan(fy):
                worst = math.inf
            else:
                worst = max(worst, abs(fx - fy) / max(abs(fy), 1e-3))
        if differing:
            kind = f"max rel diff {worst:.3e}" if numeric else "non-numeric"
            print(f"  {column}: {differing} differ, {kind}")
            worst_overall = max(worst_overall, worst if numeric else math.inf)
    print(f"bit-identical: {'yes' if worst_overall == 0 else 'no'}; max rel diff {worst_overall:.3e}")
    return 0 if worst_overall <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
