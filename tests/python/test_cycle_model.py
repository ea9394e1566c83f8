"""bench/cycle_model.py: the H200 cycle model reproduces its calibration points and is consistent.

The model is fitted on the day's H200 measurements (BENCHMARKS.md); these tests fail when a
change to its phases or constants moves a calibration point outside TOLERANCE, or breaks an
invariant any sane model of these kernels must keep.
"""
import importlib.util
import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "cycle_model.py"
spec = importlib.util.spec_from_file_location("cycle_model", SCRIPT)
cm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cm)

TOLERANCE = 0.25  # relative, on every calibration point


@pytest.fixture(scope="module")
def params():
    return cm.calibrate()


def errors(p, table):
    return {name: model(p) / measured - 1 for name, (model, measured) in table.items()}


def test_calibration_points_within_tolerance(params):
    for name, err in errors(params, {**cm.MLP_FIT, **cm.LANE_FIT}).items():
        assert abs(err) <= TOLERANCE, f"{name}: model off by {100 * err:+.0f}%"


def test_tolerance_check_can_fail(params):
    # A thin-chain step three times as long must push the MLP points out of tolerance.
    worse = dict(params, c_chain=3 * params["c_chain"])
    assert max(abs(e) for e in errors(worse, cm.MLP_FIT).values()) > TOLERANCE


def test_fitted_constants_are_physical(params):
    assert 1 <= params["c_inst"] <= 4  # instructions per modelled instruction
    assert cm.LAT_FMA <= params["c_chain"] <= 4 * cm.LAT_L2  # a chain step: at least one FMA
    assert 0 <= params["f"] <= 1
    assert 0 < params["i_bm"] < params["l_bm"]


@pytest.mark.parametrize("structure", ["current", "overlapped"])
def test_more_ctas_per_sm_never_slower(params, structure):
    for aug in (0, 1):
        for in_l2 in (False, True):
            t1 = cm.cta_step_k(structure, params, aug, in_l2, 1)
            t2 = cm.cta_step_k(structure, params, aug, in_l2, 2)
            assert t1 <= t2 <= 2 * t1  # a step per CTA no faster, per replica no slower


@pytest.mark.parametrize("structure", ["current", "overlapped"])
def test_more_replicas_never_faster(params, structure):
    times = [cm.mlp_ms(params, n, 2, structure) for n in (1, 30, 132, 264, 1000, 3000, 10_000)]
    assert times == sorted(times)
    lanes = [cm.lanes_ms(params, n) for n in (1000, 10_000, 100_000, 1_000_000)]
    assert lanes == sorted(lanes)


def test_structures_as_described(params):
    assert len(cm.phases("current", params, 1, True)) == 11
    assert len(cm.phases("overlapped", params, 1, True)) == 6  # group_overlapped_step: 2L phases
    with pytest.raises(ValueError):
        cm.phases("no-such-structure", params, 1, True)
    # the built structure does the same products with fewer barriers and shorter chains: never slower
    for k in (1, 2):
        assert cm.mlp_ms(params, 3000, k, "overlapped") <= cm.mlp_ms(params, 3000, k, "current")


def ranks_of(items):
    return [sorted(item) for item in items]


def test_overlapped_deals_as_group_trainer(params):
    # Per-rank work of 3-64-64-1, batch 64, 256 ranks, derived by hand from
    # group_overlapped_step / update_layer / group_gemm (first_item's staggered offsets).
    ph = cm.phases("overlapped", params, 1, True)
    all_ranks = list(range(256))
    assert ranks_of(ph[0][1]) == [all_ranks]  # forward l1: 256 tiles
    assert ranks_of(ph[2][1]) == [list(range(64))]  # output layer: one row per rank
    delta2, w2t = ph[3][1]  # delta2: 256 tiles from 0; W2^T's 4096 elements from 256 = rank 0
    assert sorted(delta2) == all_ranks and sorted(w2t) == all_ranks and ph[3][2] == 4096  # 32-way stores
    delta1, dw2, db2, dw3, db3 = ph[4][1]
    assert sorted(delta1) == sorted(dw2) == all_ranks
    assert sorted(db2) == list(range(64))  # db2 from offset 512
    assert sorted(dw3) == list(range(64, 128))  # dW3: 16 tiles <= 128, so 64 elements from offset 576
    assert sorted(db3) == [128]  # db3 from offset 640
    dw1, db1, gather = ph[5][1]
    assert sorted(dw1) == list(range(192))  # dW1: 3 x 64 elements from offset 0
    assert sorted(db1) == list(range(192, 256))  # db1 from offset 192
    assert sorted(gather) == list(range(64))  # the next minibatch from offset 256
    # a dense tile on every rank with 16 serial Adam updates, dW3's element one
    assert dw2[5][1] - delta1[5][1] == 16 * (cm.LAT_L2 + cm.LAT_ADAM)


def test_group_gemm_rules(params):
    items, n = cm.group_gemm(params, 64, 64, 64, True)
    assert n == 256 and len(items) == 256
    items, n = cm.group_gemm(params, 64, 4, 64, True, offset=250)  # 16 tiles: one element per rank
    assert n == 256 and sorted(items) == list(range(256))
    items, n = cm.group_gemm(params, 66, 64, 64, True)  # 17 x 16 tiles, edge tiles on ranks 0-15 twice
    assert n == 272 and items[0][0] > items[16][0]
    assert cm.transpose_conflicts(64, 64) == 4096 and cm.transpose_conflicts(65, 64) == 4160 // 32  # padded: conflict-free


def test_warp_perceptron_overlapped(params):
    global_threads = cm.THREADS
    assert len(cm.overlapped(params, 1, cm.LAT_SHARED, (3, 1))) == 2  # L = 1: two phases
    assert cm.THREADS == global_threads
    assert cm.warp_perceptron_ms(params, 30, structure="overlapped") < cm.warp_perceptron_ms(params, 30)


def test_counts_from_the_shape():
    assert cm.N_PARAMS == 4481 and cm.STEPS == 2370
    assert math.isclose(cm.MLP_FLOP, 1.647e6, rel_tol=1e-3)  # BENCHMARKS.md: 1.66 MFLOP per step
    assert cm.gemm_calls(3, 4) == [(2, 1), (1, 1)] * 4  # dW1's 3x4 block: 8 scalar chains
    assert cm.gemm_calls(4, 1) == [(2, 1), (2, 1)]
    assert 4 < cm.E_MAX32 < 6  # the warp's longest of 32 cycle walks


def test_today_credits_the_later_changes_and_keeps_the_phases(params):
    # "today" = overlapped + unrolled chains, conflict-free W^T, the gather moved to the first
    # backward phase with one normal per row: same 6 phases, a chain step cheaper by the
    # latency it hides, and every workload no slower than overlapped.
    today, over = cm.phases("today", params, 1, True), cm.phases("overlapped", params, 1, True)
    assert len(today) == len(over) == 6
    assert "gather" in today[3][0] and "gather" in over[5][0]
    assert all(mio == 0 for _, _, mio in today) and any(mio > 0 for _, _, mio in over)
    u = cm.unrolled(params)
    assert u["c_chain"] == pytest.approx(params["c_chain"] * (30 / 8 + 4) / 34)
    for k in (1, 2):
        assert cm.mlp_ms(params, 3000, k, "today") < cm.mlp_ms(params, 3000, k, "overlapped")
    assert cm.warp_perceptron_ms(params, 30, structure="today") <= cm.warp_perceptron_ms(params, 30, structure="overlapped")
    r = cm.report(params)
    seed = {(x["structure"], x["workload"]): x["model_ms"] for x in r["predictions"]}
    for s in ("overlapped", "today"):  # concurrent groups: the longer group sets the time
        assert seed[(s, "seed experiment, the two groups concurrent")] < seed[(s, "seed experiment (30 perceptrons by warps + 30 MLPs)")]


def test_today_sass_issues_what_the_sass_does(params):
    # The dense tiles and chain steps issue SASS counts (about 20 per p and 4.75 per step),
    # not 18 and 5 modelled instructions x C_INST; the latencies and phases stay today's.
    q = cm.with_sass_issue(cm.unrolled(params))
    dense, _ = cm.group_gemm(q, 64, 64, 64, True)
    ins = dense[0][0] * params["c_inst"]  # cta_step's issued count for rank 0's tile
    assert ins == pytest.approx(cm.SASS_DENSE_PER_P * 64 + 40 * params["c_inst"])
    assert 19 < cm.SASS_DENSE_PER_P < 21 and cm.SASS_CHAIN_STEP == 4.75
    sass, today = cm.phases("today-sass", params, 1, True), cm.phases("today", params, 1, True)
    assert [n for n, _, _ in sass] == [n for n, _, _ in today]
    assert cm.cta_step("today-sass", params, 1, True)[1] < cm.cta_step("today", params, 1, True)[1]
    assert cm.mlp_ms(params, 3000, 2, "today-sass") < cm.mlp_ms(params, 3000, 2, "today")


def test_report_is_json_ready(params, tmp_path):
    import json
    r = cm.report(params)
    json.dumps(r)
    assert {x["structure"] for x in r["predictions"]} == {"current", "overlapped", "today", "today-sass"}
    assert all(0 < x["peak_percent"] < 100 for x in r["predictions"])


def test_chunked_walks_cost_less_than_the_longest_walk_and_more_than_the_mean():
    # walked_indices: a warp pays the longest of 32 sums of 16 walks, per sample between the
    # mean walk (1.64) and the longest single walk of 32 lanes (4.81).
    chunked = cm.e_max_chunk_walk(16, trials=500)
    assert 1.64 < chunked < cm.e_max_walk()
    assert cm.e_max_chunk_walk(1, trials=2000) == pytest.approx(cm.e_max_walk(), rel=0.05)
