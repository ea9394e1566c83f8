"""bench/sass_loops.py: finds the loops of `cuobjdump -sass` output and counts what they issue."""
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "sass_loops.py"
spec = importlib.util.spec_from_file_location("sass_loops", SCRIPT)
sl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sl)


def sass(kernels):
    """cuobjdump's layout: a Function line, then one line per instruction and its encoding."""
    lines = ["", "\tcode for sm_90", "\t.target\tsm_90", ""]
    for name, body in kernels.items():
        lines += [f"\t\tFunction : {name}", '\t.headerflags\t@"EF_CUDA_SM90"']
        for i, text in enumerate(body):
            lines += [f"        /*{16 * i:04x}*/                   {text} ;   /* 0x000fe20000000800 */",
                      "                                                      /* 0x000fe20000000800 */"]
    return "\n".join(lines) + "\n"


def product_loop(ffma, lds, first):
    """A loop at instruction `first`: LDS.128s, FFMAs, a counter and a backward branch."""
    body = [f"LDS.128 R{4 * k}, [R100+0x{256 * k:x}]" for k in range(lds)]
    body += ["FFMA R1, R2, R3, R1"] * ffma + ["IADD3 R9, R9, 0x4, RZ", "ISETP.GE.AND P0, PT, R9, R8, PT"]
    return body + [f"@!P0 BRA 0x{16 * first:x}"]


def test_a_loop_is_counted_from_its_branch_target():
    prologue = ["LDC R1, c[0x0][0x28]", "MOV R9, RZ"]
    body = prologue + product_loop(64, 8, len(prologue)) + ["EXIT"]
    summary = sl.summarize(sl.parse_sass(sass({"_Z6kernelv": body})), "", 16)
    k = summary["_Z6kernelv"]
    assert k["instructions"] == len(body) and k["bytes"] == 16 * len(body)
    (loop,) = k["loops"]
    assert (loop["instructions"], loop["ffma"], loop["copies"]) == (64 + 8 + 3, 64, 1)
    assert loop["mix"]["LDS.128"] == 8 and loop["mix"]["BRA"] == 1


def test_identical_loops_count_once_with_their_copies_and_thin_loops_are_left_out():
    body = ["MOV R9, RZ"]
    for _ in range(3):  # three inlined call sites of one product
        body += product_loop(16, 2, len(body))
    body += product_loop(4, 1, len(body))  # a chain: fewer FFMAs than --min-ffma
    body += ["BRA 0x%x" % (16 * (len(body) + 5)), "EXIT"]  # a forward branch is no loop
    (loop,) = sl.summarize(sl.parse_sass(sass({"k": body})), "", 16)["k"]["loops"]
    assert (loop["ffma"], loop["copies"]) == (16, 3)


def test_kernels_are_kept_apart_and_filtered_by_name():
    text = sass({"_Z3onev": product_loop(32, 4, 0), "_Z3twov": ["EXIT"]})
    assert set(sl.summarize(sl.parse_sass(text), "", 16)) == {"_Z3onev", "_Z3twov"}
    assert set(sl.summarize(sl.parse_sass(text), "one", 16)) == {"_Z3onev"}


def test_outer_loops_only_on_request():
    inner = product_loop(16, 2, 1)
    body = ["MOV R9, RZ"] + inner + ["FFMA R5, R5, R5, R5"] * 16 + ["@P1 BRA 0x0", "EXIT"]  # an outer loop from 0
    parsed = sl.parse_sass(sass({"k": body}))
    assert [l["ffma"] for l in sl.summarize(parsed, "", 16)["k"]["loops"]] == [16]
    assert [l["ffma"] for l in sl.summarize(parsed, "", 16, innermost=False)["k"]["loops"]] == [16, 32]


def test_predicates_are_not_opcodes():
    assert sl.opcode("@!P0 BRA 0x40") == "BRA"
    assert sl.opcode("@UP1 LDS.128 R4, [R2]") == "LDS.128"
