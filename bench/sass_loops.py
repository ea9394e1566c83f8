#!/usr/bin/env python3
"""What the compiled kernels issue: per-kernel SASS size and the instruction mix of every loop.

Issue-bound kernels are as fast as their instructions per FMA. ptxas reports registers and
spills (scripts/kernel-resources.sh) but not that, so this reads the SASS itself:

  bench/sass_loops.py kernels/train_fused.cu [--arch 90] [--kernel fused_mlp] [--json FILE]
  bench/sass_loops.py FILE.cubin | FILE.sass ...

A .cu file is compiled with the build's code-generation flags (those of kernel-resources.sh);
a .cubin is disassembled with cuobjdump (the CUDA toolkit's; $CUOBJDUMP names another, e.g.
the one in PyPI's nvidia-cuda-cuobjdump wheel); a .sass file is `cuobjdump -sass` output.
A loop is the code between a backward branch and its target. Only innermost loops (--all:
every loop) with at least --min-ffma FFMAs are listed (the products' bodies); identical loops
(one per inlined call site) are counted once with their multiplicity. Needs no GPU.
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTION = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
FUNCTION = re.compile(r"^\s+Function : (\S+)")
BRANCH = re.compile(r"\bBRA\b.*?(0x[0-9a-f]+)")
PREDICATE = re.compile(r"^@!?U?P\w+\s+")


def opcode(text):
    """'@P0 LDS.128 R4, [R2]' -> 'LDS.128'."""
    return PREDICATE.sub("", text).split()[0]


def parse_sass(text):
    """{mangled kernel name: [(address, instruction text)]} of `cuobjdump -sass` output."""
    kernels, current = {}, None
    for line in text.splitlines():
        f = FUNCTION.match(line)
        if f:
            current = kernels.setdefault(f.group(1), [])
            continue
        m = INSTRUCTION.match(line)
        if m and current is not None:
            current.append((int(m.group(1), 16), m.group(2)))
    return kernels


def loops(instructions, min_ffma, innermost=True):
    """{first, last, instructions, ffma, mix} for each backward branch, smallest first;
    innermost: only loops that hold no other loop."""
    index = {address: i for i, (address, _) in enumerate(instructions)}
    spans = []
    for i, (address, text) in enumerate(instructions):
        b = BRANCH.search(text)
        if b and int(b.group(1), 16) <= address and int(b.group(1), 16) in index:
            spans.append((index[int(b.group(1), 16)], i))
    found = []
    for begin, end in spans:
        if innermost and any(begin <= b and e < end for b, e in spans if (b, e) != (begin, end)):
            continue
        target, address = instructions[begin][0], instructions[end][0]
        body = [opcode(t) for _, t in instructions[begin : end + 1]]
        mix = collections.Counter(body)
        ffma = sum(n for op, n in mix.items() if op.split(".")[0] == "FFMA")
        if ffma >= min_ffma:
            found.append(dict(first=target, last=address, instructions=len(body), ffma=ffma, mix=dict(mix)))
    return sorted(found, key=lambda x: x["instructions"])


def summarize(kernels, kernel_filter, min_ffma, innermost=True):
    """Per kernel: its size and its distinct FFMA loops (same mix = same loop)."""
    out = {}
    for name, instructions in kernels.items():
        if kernel_filter and kernel_filter not in name:
            continue
        distinct = collections.OrderedDict()
        for loop in loops(instructions, min_ffma, innermost):
            key = tuple(sorted(loop["mix"].items()))
            if key in distinct:
                distinct[key]["copies"] += 1
            else:
                distinct[key] = dict(loop, copies=1)
        out[name] = dict(instructions=len(instructions), bytes=16 * len(instructions), loops=list(distinct.values()))
    return out


def cuobjdump():
    tool = os.environ.get("CUOBJDUMP") or shutil.which("cuobjdump")
    if not tool and Path("/usr/local/cuda/bin/cuobjdump").exists():
        tool = "/usr/local/cuda/bin/cuobjdump"
    if not tool:
        sys.exit("sass_loops.py: no cuobjdump (set CUOBJDUMP, or install the CUDA toolkit's cuobjdump)")
    return tool


def sass_of(path, arch):
    path = Path(path)
    if path.suffix == ".sass":
        return path.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        cubin = path
        if path.suffix == ".cu":
            nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
            cubin = Path(tmp) / "kernels.cubin"
            subprocess.run([nvcc, "-I", str(ROOT / "kernels"), "-I", str(ROOT / "include"), "-O3", "-DNDEBUG",
                            f"-arch=sm_{arch}", "--fmad=false", "--expt-relaxed-constexpr", "-std=c++20", "-cubin",
                            "-o", str(cubin), str(path)], check=True)
        return subprocess.run([cuobjdump(), "-sass", str(cubin)], check=True, capture_output=True, text=True).stdout


def demangle(names):
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
        return dict(zip(names, out.splitlines()))
    except (OSError, subprocess.CalledProcessError):
        return {n: n for n in names}


def report(summary):
    names = demangle(list(summary))
    for name, k in summary.items():
        short = re.sub(r"^void |underspec::cuda::(\(anonymous namespace\)::)?|\(.*\)$", "", names[name])
        print(f"{short}: {k['instructions']:,} instructions ({k['bytes'] / 1024:.0f} KiB)")
        for loop in k["loops"]:
            loads = {op: n for op, n in loop["mix"].items() if op.startswith(("LDS", "LDG", "LD."))}
            print(f"  {loop['instructions']:5d} instructions, {loop['ffma']:4d} FFMA "
                  f"({loop['instructions'] / loop['ffma']:.2f} per FFMA), x{loop['copies']}  loads {loads}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="+", help=".cu, .cubin or .sass files")
    ap.add_argument("--arch", default="90")
    ap.add_argument("--kernel", default="", help="only kernels whose mangled name contains this")
    ap.add_argument("--min-ffma", type=int, default=16)
    ap.add_argument("--all", action="store_true", help="outer loops too, not only the innermost")
    ap.add_argument("--json", help="also write the summary as JSON")
    args = ap.parse_args()
    summary = {}
    for path in args.inputs:
        summary.update(summarize(parse_sass(sass_of(path, args.arch)), args.kernel, args.min_ffma, not args.all))
    report(summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
