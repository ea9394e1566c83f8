#!/usr/bin/env python3
"""Compare two replicas.csv files (e.g. the CUDA and CPU backends' runs of one config).

Prints, per numeric column, how many rows differ in their bits and the largest relative
difference; exits 1 if the files have different replicas or a difference above --tol.
Standard library only: it runs on the bare GPU machine.
"""
import argparse
import csv
import math
import sys


def read(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {r["replica"]: r for r in rows}, (rows[0].keys() if rows else [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--tol", type=float, default=1e-3, help="largest relative difference allowed")
    args = parser.parse_args()
    a, columns = read(args.a)
    b, _ = read(args.b)
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
