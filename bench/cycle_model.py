#!/usr/bin/env python3
"""Analytic cycle model of the fused CUDA training kernels on the H200 (issue 11).

A MODEL, calibrated on the one day's H200 measurements in BENCHMARKS.md ("CUDA backend
(H200)"); its purpose is to compare kernel structures before GPU time is spent on them.

MLP (fused_mlp_kernel, one 256-thread CTA per 3-64-64-1 replica, batch 64). A training
step is a list of phases separated by __syncthreads, each holding work items dealt to ranks
as group_trainer.hpp deals them. Three structures:
  "current": the old 11-barrier step as measured on the H200 (4x4 tiles round-robin from
      rank 0, edge tiles by gemm_block's scalar calls, a separate Adam phase);
  "overlapped": group_overlapped_step as built (2L = 6 barriers): jobs of a phase dealt from
      staggered offsets (first_item), products with 2 x tiles <= 256 one output element per
      rank, Adam in the gradient epilogue, the next minibatch gathered in the last phase.
      A prediction: nothing was fitted on it.
  "today": the overlapped step with what changed after it, each an ASSUMPTION on top of the
      fit: thin chains unrolled by UNROLL (their loads issue a batch ahead, so a chain step
      costs C_CHAIN x (LAT_SHARED / UNROLL + LAT_FMA) / (LAT_SHARED + LAT_FMA), the fitted
      step's overhead scaled with its latency), W^T copied along diagonals (no bank
      conflicts), and the next gather in the first backward phase drawing one normal per row
      (box_muller_one: half of a normal4's transcendental work, so L_BM / 2 and I_BM / 2).
  "today-sass": "today" with the issue of the dense tiles and of the thin chains' steps read
      off today's SASS (bench/sass_loops.py, BENCHMARKS.md: SASS_DENSE_PER_P, SASS_CHAIN_STEP
      issued instructions) instead of modelled instructions x the fitted C_INST, which was
      fitted on the old spilling kernel. Everything else as "today".
Per rank an item costs instructions and a dependency latency:
  dense 4x4 tile (vector path, K deep): 18K + 40 instructions (16 FMA + 2 LDS.128 per p),
      latency 2 shared loads + K FMA (16 independent chains: issue-bound, not latency-bound);
  thin chain (a gemm_tile<m,n> call of gemm_block, or gemm_tile<1,1>): one dependent step per
      p, C_CHAIN cycles each (fitted: FMA + the exposed shared load);
  bias sum: K dependent adds, C_CHAIN each; Adam, loop or epilogue: updates serial (the
      pointers may alias, so loads wait for the previous stores), memory latency + LAT_ADAM each;
  gather row: the permutation's cycle walk (the warp pays the max of 32 walks), 4 L2 loads,
      Box-Muller in double (augmentation only: stride != 1, so every row draws a normal4).
A warp costs the max of its ranks (SIMT). Phase time for one CTA alone on an SM:
  max(longest warp latency, busiest scheduler's issue = C_INST x instructions, shared-pipe
  cycles of bank conflicts) + LAT_BAR.  Step time T1 = sum over phases.
k co-resident CTAs: each CTA's step is stretched by the others' issue, T_k = max(T1 + (k-1) F
I/4, k I/4), I = the CTA's issue cycles per step (C_INST x instructions). Sweeps: full waves of
132 k CTAs at T_k, a last wave of <= 132 CTAs at T1; regimes mixed by their fractions (one
wave: the slowest, augmentation).

Perceptron lanes (lane_perceptron_kernel, 128-thread CTAs, 5 per SM as measured): per sample a warp
has latency L = E_MAX32 walks x LAT_EVAL + LAT_L2 + LAT_REST (+ L_BM / 4: one normal4 per 4
samples, augmentation) and I instructions; with w warps per scheduler a sample costs
max(L, w I). Perceptron warps (warp_perceptron_kernel): the group trainer's phases with 32
ranks (either structure; overlapped: 2 phases), using the MLP's fitted C_CHAIN and C_INST (nothing fitted on warps: held out).

Constants (cycles at 1.98 GHz) and where they come from:
  hardware: 132 SMs, 4 schedulers/SM, 1.98 GHz, FP32 peak 67 TFLOP/s (BENCHMARKS.md).
  LAT_FMA 4, LAT_SHARED 30, LAT_L2 275 (Hopper microbenchmarks; the brief's 250-300).
  LAT_BAR 40: fixed cost of a __syncthreads with every warp already there (not fitted).
  LAT_ADAM 100, INSTR_ADAM 30: one adam_update (FMAs, sqrt, divide) as a dependent chain.
  LAT_EVAL 90, INSTR_EVAL 22: permute_domain = 4 rounds of xor-imul-and-shift-xor, 5
      dependent ops of ~4.5 cycles each (permutation.hpp).
  E_MAX32: expected max over 32 lanes of the cycle-walk length, n = 5000 in a 2^13 domain
      (computed below: 4.81; mean walk 1.64).
  Fitted (calibrate()): C_INST (instructions per modelled instruction: address arithmetic,
      local-memory tables, spills), C_CHAIN (cycles per thin-chain step), F (issue
      interference of co-resident CTAs) on 3000 MLPs at 1 and 2 CTAs/SM, the seed
      experiment's 120 ms and Nsight's "issues every 2.9 cycles"; L_BM, I_BM (one normal4 in
      double) on the lanes at 10^4 / 10^5 (5 epochs) and 10^5 x 30 epochs, and Nsight's "a lone
      lane warp issues every 5 cycles".
Held out (never fitted): the MLP throughput rows (100 / 1,000 / 10,000 replicas, 5 epochs),
Nsight's 40% of stall at barriers, lanes at 1,000, and every warp-perceptron point.
"""
import argparse
import json
import math
import random

SMS, SCHED, CLOCK, PEAK = 132, 4, 1.98e9, 67e12
LAT_FMA, LAT_SHARED, LAT_L2, LAT_BAR = 4, 30, 275, 40
LAT_ADAM, INSTR_ADAM = 100, 30
LAT_EVAL, INSTR_EVAL = 90, 22
LAT_REST, INSTR_REST = 60, 40  # lane: 3-FMA forward, mse_grad, 4 gradient FMAs, loop
UNROLL = 8  # US_DEVICE_UNROLL of the thin chains (gemm_tile, bias_grad)
# Issued per p of a dense 4x4 vector tile and per step of a thin chain, from the SASS of
# fused_mlp_kernel<true> (nvcc 13.0, sm_90; bench/sass_loops.py): the three dense products'
# innermost loops issue 3,824 instructions per rank and step for 3 x 64 p; a gemm_tile<1,1>
# chain unrolled by 8 issues 38 per 8 steps.
SASS_DENSE_PER_P, SASS_CHAIN_STEP = 3824 / 192, 38 / 8
THREADS, TILE, BATCH, WIDTHS = 256, 4, 64, (3, 64, 64, 1)
N_TRAIN, EPOCHS = 5000, 30
STEPS = EPOCHS * math.ceil(N_TRAIN / BATCH)  # 79 steps per epoch
N_PARAMS = sum(WIDTHS[l] * WIDTHS[l + 1] + WIDTHS[l + 1] for l in range(3))  # 4481
# FLOP per MLP step: forward and weight gradients over every layer, input errors above layer 1
MLP_FLOP = 2 * BATCH * (2 * sum(a * b for a, b in zip(WIDTHS, WIDTHS[1:])) + sum(a * b for a, b in zip(WIDTHS[1:-1], WIDTHS[2:])))
PERC_FLOP = 13  # per sample-step, as underspec bench counts it (857 GFLOP/s at 6.6e10 /s)


def e_max_walk(n=N_TRAIN, lanes=32):
    """Expected max over `lanes` of geometric walk lengths (success n / 2^bits)."""
    q = 1 - n / 2 ** math.ceil(math.log2(n))
    return sum(1 - (1 - q ** k) ** lanes for k in range(200))


def e_max_chunk_walk(chunk, n=N_TRAIN, lanes=32, trials=2000):
    """Evaluations per sample when each lane walks `chunk` positions in one loop
    (walked_indices): the expected max over `lanes` of a sum of `chunk` walk lengths, / chunk.
    Simulated with a fixed seed (about 2.25 for chunks of 16, against e_max_walk's 4.81)."""
    rng, q = random.Random(1), n / 2 ** math.ceil(math.log2(n))

    def walk():
        k = 1
        while rng.random() > q:
            k += 1
        return k

    return sum(max(sum(walk() for _ in range(chunk)) for _ in range(lanes)) for _ in range(trials)) / trials / chunk


E_MAX32 = e_max_walk()
PARAMS = {"c_inst": 2.0, "c_chain": 30.0, "f": 0.5, "l_bm": 1500.0, "i_bm": 300.0}


# ---- work items: each returns {rank: (instructions, latency)} -------------------------
def gemm_calls(m, n):
    """gemm_block's split of an m x n block into gemm_tile<mm, nn> calls (model.hpp)."""
    calls, j = [], 0
    for width in (16, 8, 1):
        while j + width <= n:
            i = 0
            for rows in (6, 2, 1):
                while i + rows <= m:
                    calls.append((rows, width))
                    i += rows
            j += width
    return calls


def tiles(p, M, N, K, vec):
    """The old group_gemm ("current"): M x N x K in 4x4 tiles dealt round-robin from rank 0,
    edge tiles by gemm_block."""
    out, tj = {}, math.ceil(N / TILE)
    for t in range(math.ceil(M / TILE) * tj):
        m, n = min(TILE, M - t // tj * TILE), min(TILE, N - t % tj * TILE)
        if m == n == TILE and vec:
            ins, lat = 18 * K + 40, 2 * LAT_SHARED + LAT_FMA * K
        elif m == n == TILE:  # full tile, scalar loop (K = 1 or 3): 16 independent chains
            ins, lat = 26 * K + 40, 3 * LAT_SHARED + LAT_FMA * K
        else:  # thin: dependent scalar chains, one gemm_tile call after another
            calls = gemm_calls(m, n)
            ins = sum((a + b + a * b + 2) * K + 8 * a * b for a, b in calls)
            lat = len(calls) * K * p["c_chain"] + LAT_SHARED
        add(out, t % THREADS, ins, lat)
    return out


def rows(n, ins, lat, first=0):
    """n units, unit u to rank (first + u) % ranks; a rank's units run one after another."""
    out = {}
    for u in range(n):
        add(out, (first + u) % THREADS, ins, lat)
    return out


def bias(p, cols):
    return rows(cols, 3 * BATCH, BATCH * p["c_chain"] + LAT_SHARED)


def gather(p, aug, first=0, normal_share=1.0):
    """normal_share: the share of a normal4's Box-Muller work a row draws (box_muller_one: 1/2)."""
    ins = E_MAX32 * INSTR_EVAL + 30 + aug * normal_share * p["i_bm"]
    return rows(BATCH, ins, E_MAX32 * LAT_EVAL + LAT_L2 + LAT_SHARED + aug * normal_share * p["l_bm"], first)


def unrolled(p):
    """p with the chain step of UNROLL-unrolled chains ("today"; an assumption, see above)."""
    return {**p, "c_chain": p["c_chain"] * (LAT_SHARED / UNROLL + LAT_FMA) / (LAT_SHARED + LAT_FMA)}


def with_sass_issue(p):
    """p whose dense tiles and chain steps issue what today's SASS does ("today-sass"): the
    per-item counts are divided by C_INST here because cta_step multiplies every count by it."""
    return {**p, "dense_per_p": SASS_DENSE_PER_P / p["c_inst"], "chain_per_step": SASS_CHAIN_STEP / p["c_inst"]}


def add(out, rank, ins, lat):
    a, b = out.get(rank, (0, 0))
    out[rank] = (a + ins, b + lat)


# ---- the overlapped step (group_overlapped_step, group_gemm, update_layer) ------------
def group_gemm(p, M, N, K, vec, offset=0, adam_lat=None):
    """group_gemm<4,4>: (items, count dealt), item u to rank (u + offset) % ranks; with 2 x
    tiles <= ranks one output element each (gemm_tile<1,1>); edge tiles (gemm_tile_edge) cost
    a full scalar tile; the Adam epilogue's updates are serial, adam_lat + LAT_ADAM each."""
    ti, tj = math.ceil(M / TILE), math.ceil(N / TILE)
    u_ins, u_lat = (INSTR_ADAM, adam_lat + LAT_ADAM) if adam_lat is not None else (0, 0)
    if 2 * ti * tj <= THREADS:
        return rows(M * N, p.get("chain_per_step", 5) * K + 8 + u_ins, K * p["c_chain"] + LAT_SHARED + u_lat,
                    offset), M * N
    out = {}
    for t in range(ti * tj):
        m, n = min(TILE, M - t // tj * TILE), min(TILE, N - t % tj * TILE)
        if m == n == TILE and vec:
            ins, lat = p.get("dense_per_p", 18) * K + 40, 2 * LAT_SHARED + LAT_FMA * K
        else:  # scalar loop, 16 independent chains (K = 1 or 3, or an edge tile)
            ins, lat = 26 * K + 40, 3 * LAT_SHARED + LAT_FMA * K
        add(out, (t + offset) % THREADS, ins + m * n * u_ins, lat + m * n * u_lat)
    return out, ti * tj


def transpose_conflicts(fan_in, fan_out):
    """Shared-pipe cycles of w_t[(e % fan_out) * fan_in + e / fan_out] = w[e], a warp storing
    32 consecutive e (the ranks take e = rank + 256 j): the busiest bank's stores per warp."""
    n, cycles = fan_in * fan_out, 0
    for e0 in range(0, n, 32):
        banks = [((e % fan_out) * fan_in + e // fan_out) % 32 for e in range(e0, min(e0 + 32, n))]
        cycles += max(banks.count(b) for b in set(banks))
    return cycles


def overlapped(p, aug, mem, widths=WIDTHS, today=False):
    """group_overlapped_step's 2L phases for `widths` (moment latency `mem`); today: with the
    changes made after it (conflict-free W^T, the gather in the first backward phase drawing
    one normal per row; the caller passes unrolled(p) for the chains)."""
    L, w = len(widths) - 1, widths
    vec = lambda a_stride, ldb: a_stride % 4 == 0 and ldb % 4 == 0  # gemm_tile_vector_steps applies
    update_phase = lambda l: L - l + 1 if l < L else min(2, L)

    def update_layer(l, off):  # dW_l (A = act_{l-1} by columns) with Adam, then db_l from off + dealt
        dw, n = group_gemm(p, w[l - 1], w[l], BATCH, vec(w[l - 1], w[l]), off, mem)
        db = rows(w[l], 3 * BATCH + INSTR_ADAM, BATCH * p["c_chain"] + LAT_SHARED + mem + LAT_ADAM, off + n)
        return [dw, db], off + n + w[l]

    out = [(f"forward l{l}", [group_gemm(p, BATCH, w[l], w[l - 1], vec(w[l - 1], w[l]))[0]], 0) for l in range(1, L)]
    # output layer: rank b makes row b's prediction (gemm_tile<1,1>) then its error
    out.append((f"forward l{L} + error", [rows(BATCH, 5 * w[L - 1] + 16, w[L - 1] * p["c_chain"] + 3 * LAT_SHARED)], 0))
    for k in range(1, L + 1):
        h, items, names, off, mio = L - k, [], [], 0, 0
        if h >= 1:  # delta_h from delta_{h+1} (the output layer's directly, else via W_{h+1}^T)
            d, off = group_gemm(p, BATCH, w[h], w[h + 1], vec(w[h + 1], w[h]))
            items.append(d)
            names.append(f"delta{h}")
            if h >= 2:  # W_h^T for the next phase: strided stores, dealt from off
                items.append(rows(w[h - 1] * w[h], 6, 2 * LAT_SHARED, off))
                off, mio = off + w[h - 1] * w[h], 0 if today else transpose_conflicts(w[h - 1], w[h])
                names.append(f"W{h}^T")
        for l in ([L - k + 1] if k >= 2 and update_phase(L - k + 1) == k else []) + ([L] if update_phase(L) == k else []):
            its, off = update_layer(l, off)
            items += its
            names.append(f"dW{l} db{l} +adam")
        if k == (1 if today else L):  # the next minibatch's rows, dealt from off
            items.append(gather(p, aug, off, 0.5 if today else 1.0))
            names.append("gather")
        out.append((", ".join(names), items, mio))
    return out


# ---- structures: a step as data ---------------------------------------------------------
def phases(structure, p, aug, moments_in_l2):
    """[(name, [items], shared-pipe cycles)] of one MLP training step."""
    mem = LAT_L2 if moments_in_l2 else LAT_SHARED
    if structure == "current":  # 11 barriers (BENCHMARKS.md), grads/moments where the layout put them
        return [
            ("gather", [gather(p, aug)], 0),
            ("forward l1", [tiles(p, 64, 64, 3, False)], 0),
            ("forward l2", [tiles(p, 64, 64, 64, True)], 0),
            ("forward l3", [tiles(p, 64, 1, 64, False)], 0),
            ("output error", [rows(BATCH, 8, 2 * LAT_SHARED)], 0),
            ("dW3 db3 W3^T", [tiles(p, 64, 1, 64, False), bias(p, 1), rows(64, 6, 2 * LAT_SHARED)], 0),
            ("delta2", [tiles(p, 64, 64, 1, False)], 0),
            # the transpose's stores hit one bank 32 ways: 4096 shared-pipe cycles
            ("dW2 db2 W2^T", [tiles(p, 64, 64, 64, True), bias(p, 64), rows(4096, 6, 2 * LAT_SHARED)], 4096),
            ("delta1", [tiles(p, 64, 64, 64, True)], 0),
            ("dW1 db1", [tiles(p, 3, 64, 64, False), bias(p, 64)], 0),
            ("adam", [rows(N_PARAMS, INSTR_ADAM + 8, mem + LAT_ADAM)], 0),
        ]
    if structure == "overlapped":  # as built: 2L = 6 barriers, Adam in the gradient epilogues
        return overlapped(p, aug, mem)
    if structure == "today":  # overlapped plus the later changes, on assumptions (see above)
        return overlapped(unrolled(p), aug, mem, today=True)
    if structure == "today-sass":  # today, with the dense tiles' and chains' issue from SASS
        return overlapped(with_sass_issue(unrolled(p)), aug, mem, today=True)
    raise ValueError(f"unknown structure {structure!r}")


def cta_step(structure, p, aug, moments_in_l2, per_phase=None):
    """(T1 cycles, issue cycles I, barrier-wait fraction) of one CTA step alone on an SM;
    per_phase (a list) receives (name, cycles) of every phase."""
    t1 = issue_total = wait = 0.0
    for name, items, mio in phases(structure, p, aug, moments_in_l2):
        per_rank = {}
        for item in items:
            for r, (ins, lat) in item.items():
                add(per_rank, r, ins, lat)
        warps = [max((per_rank.get(w * 32 + l, (0, 0)) for l in range(32)), key=lambda x: x[0])[0] * p["c_inst"]
                 for w in range(THREADS // 32)]
        lats = [max(per_rank.get(w * 32 + l, (0, 0))[1] for l in range(32)) for w in range(THREADS // 32)]
        sched = [sum(warps[s::SCHED]) for s in range(SCHED)]
        t = max(max(lats), max(sched), mio) + LAT_BAR
        t1 += t
        if per_phase is not None:
            per_phase.append((name, t))
        issue_total += sum(warps)
        wait += sum(t - max(l, i) for l, i in zip(lats, warps)) / len(warps)
    return t1, issue_total / SCHED, wait / t1


def cta_step_k(structure, p, aug, moments_in_l2, k):
    t1, issue, _ = cta_step(structure, p, aug, moments_in_l2)
    return max(t1 + (k - 1) * p["f"] * issue, k * issue)


def mlp_ms(p, replicas, k, structure="current", aug_frac=1 / 3, steps=STEPS, moments_in_l2=None):
    """A sweep of MLP replicas at k CTAs per SM (k = 1: everything in shared memory)."""
    if moments_in_l2 is None:
        moments_in_l2 = k > 1
    one_wave = replicas <= SMS
    fracs = [(1.0, 1)] if one_wave else [(aug_frac, 1), (1 - aug_frac, 0)]

    def step(kk):
        return sum(w * cta_step_k(structure, p, a, moments_in_l2, kk) for w, a in fracs if w)

    full, rest = divmod(replicas, SMS * k)
    cycles = full * step(k) + (step(1) if 0 < rest <= SMS else step(k) if rest else 0)
    return cycles * steps / CLOCK * 1e3


# ---- perceptrons ------------------------------------------------------------------------
# The lane kernel with its scratch column (perceptron_lane.hpp: moments, permutation, seed and
# noises in shared memory, 64 registers), against the 80-register kernel before it, in issued
# instructions read off the SASS of both (nvcc 13.0, sm_90; compiled, not run): per sample 33
# instead of 37 outside the chunk step, and about 2 more per sample of chunk step (the
# permutation's 10 shared loads, the data set's pointers); 27 instead of 30 per evaluation of
# the walk; per augmented sample about 5 (the key schedule from the seed word, four stores per
# block) instead of about 19 (the block's normal picked and added in the sample loop).
# Added to the modelled counts; latencies unchanged.
LANE_SCRATCH_DELTA = {"rest": -2, "eval": -3, "aug": -14}


def lane_sample(p, aug, walk=None, delta=None):
    walk = E_MAX32 if walk is None else walk
    lat = walk * LAT_EVAL + LAT_L2 + LAT_REST + aug * p["l_bm"] / 4 + LAT_ADAM / 64
    ins = walk * INSTR_EVAL + INSTR_REST + aug * p["i_bm"] / 4 + 4 * INSTR_ADAM / 64
    if delta:
        ins += delta["rest"] + walk * delta["eval"] + aug * delta["aug"]
    return lat, ins


def lanes_ms(p, replicas, epochs=EPOCHS, aug_frac=1 / 3, per_sm=5, walk=None, delta=None):
    """Lanes: 128-thread CTAs, per_sm of them per SM (5 at the measured 90 registers, 6 at 80, 8
    at today's 64); a wave of c CTAs per SM has c warps per scheduler. `walk`: permutation
    evaluations a warp pays per sample (E_MAX32 as measured; e_max_chunk_walk(16) with
    walked_indices). `delta`: LANE_SCRATCH_DELTA for today's kernel."""
    lat, ins = [sum(w * lane_sample(p, a, walk, delta)[i] for w, a in ((aug_frac, 1), (1 - aug_frac, 0)))
                for i in (0, 1)]
    ctas, cycles = math.ceil(replicas / 128), 0.0
    full, rest = divmod(ctas, SMS * per_sm)
    for c in [per_sm] * full + ([math.ceil(rest / SMS)] if rest else []):
        cycles += max(lat, c * ins)
    return cycles * epochs * N_TRAIN / CLOCK * 1e3


def warp_perceptron_ms(p, replicas, epochs=EPOCHS, aug=1, structure="current"):
    """Warps: the group trainer with 32 ranks, 4 warps per CTA, 2 CTAs per SM; __syncwarp ~free.
    "overlapped": group_overlapped_step for 3-1 (2 phases), moments in shared memory."""
    global THREADS
    saved, THREADS = THREADS, 32
    try:
        if structure in ("overlapped", "today", "today-sass"):
            q = p if structure == "overlapped" else unrolled(p)
            q = with_sass_issue(q) if structure == "today-sass" else q
            steps = [items for _, items, _ in overlapped(q, aug, LAT_SHARED, (3, 1), structure != "overlapped")]
        else:
            steps = [[gather(p, aug)], [tiles(p, 64, 1, 3, False)], [rows(BATCH, 8, 2 * LAT_SHARED)],
                     [tiles(p, 3, 1, 64, False), bias(p, 1)], [rows(4, INSTR_ADAM + 8, LAT_SHARED + LAT_ADAM)]]
        ctas = math.ceil(replicas / 4)
        full, rest = divmod(ctas, SMS * 2)
        waves = [2] * full + ([math.ceil(rest / SMS)] if rest else [])
        cycles = 0.0
        for c in waves:  # c CTAs per SM: c warps per scheduler
            for items in steps:
                per_rank = {}
                for item in items:
                    for r, (i, lat) in item.items():
                        add(per_rank, r, i, lat)
                cycles += max(max(v[1] for v in per_rank.values()), c * p["c_inst"] * max(v[0] for v in per_rank.values()))
        return cycles * epochs * math.ceil(N_TRAIN / BATCH) / CLOCK * 1e3
    finally:
        THREADS = saved


# ---- calibration ------------------------------------------------------------------------
def nsight_issue_interval(p):
    """Cycles between a scheduler's issues, two CTAs per SM (Nsight measured 2.9)."""
    t1, issue, _ = cta_step("current", p, 1 / 3, True)
    return cta_step_k("current", p, 1 / 3, True, 2) / (2 * issue)


MLP_FIT = {  # name: (model, measured)
    "3000 MLPs, 2 CTAs/SM (ms)": (lambda p: mlp_ms(p, 3000, 2), 1692.0),
    "3000 MLPs, 1 CTA/SM (ms)": (lambda p: mlp_ms(p, 3000, 1), 2302.0),
    "seed: 30 MLPs (ms)": (lambda p: mlp_ms(p, 30, 2), 120.0),
    "Nsight: cycles per issue (2 CTAs/SM)": (nsight_issue_interval, 2.9),
}
LANE_FIT = {
    "10^4 lanes, 5 epochs, aug (ms)": (lambda p: lanes_ms(p, 10_000, 5, 1), 16.0),
    "10^5 lanes, 5 epochs, aug (ms)": (lambda p: lanes_ms(p, 100_000, 5, 1), 37.9),
    "100,002 lanes, 30 epochs, CLI (ms)": (lambda p: lanes_ms(p, 100_002), 176.0),
    "Nsight: lone lane warp, cycles per issue": (lambda p: lane_sample(p, 1)[0] / lane_sample(p, 1)[1], 5.0),
}
HELD_OUT = {
    "MLP 100, 5 epochs, aug (ms)": (lambda p: mlp_ms(p, 100, 2, aug_frac=1, steps=395), 16.3),
    "MLP 1,000, 5 epochs, aug (ms)": (lambda p: mlp_ms(p, 1000, 2, aug_frac=1, steps=395), 128.8),
    "MLP 10,000, 5 epochs, aug (ms)": (lambda p: mlp_ms(p, 10_000, 2, aug_frac=1, steps=395), 1191.4),
    "Nsight: barrier share of stall, % (model at 1 CTA)": (lambda p: 100 * cta_step("current", p, 1 / 3, True)[2], 40.0),
    "lanes 1,000, 5 epochs, aug (ms)": (lambda p: lanes_ms(p, 1000, 5, 1), 16.4),
    "warps 100, 5 epochs, aug (ms)": (lambda p: warp_perceptron_ms(p, 100, 5), 2.99),
    "warps 1,000, 5 epochs, aug (ms)": (lambda p: warp_perceptron_ms(p, 1000, 5), 3.34),
    "warps 10,000, 5 epochs, aug (ms)": (lambda p: warp_perceptron_ms(p, 10_000, 5), 32.9),
    "seed: 30 perceptrons by warps (ms)": (lambda p: warp_perceptron_ms(p, 30), 20.0),
}


def fit(p, names, targets):
    """Pattern search on the squared log errors of `targets` over the constants `names`."""
    def loss(q):
        return sum(math.log(model(q) / meas) ** 2 for model, meas in targets.values())

    p, best, step = dict(p), loss(p), 0.5
    while step > 1e-4:
        improved = False
        for n in names:
            for s in (1 + step, 1 / (1 + step)):
                q = dict(p, **{n: p[n] * s})
                if q["f"] <= 1 and (l := loss(q)) < best:
                    p, best, improved = q, l, True
        if not improved:
            step /= 2
    return p


def calibrate():
    p = fit(PARAMS, ("l_bm", "i_bm"), LANE_FIT)
    return fit(p, ("c_inst", "c_chain", "f"), MLP_FIT)


STRUCTURES = ("current", "overlapped", "today", "today-sass")


def report(p):
    checks = [dict(name=n, set=s, model=m(p), measured=v, error=m(p) / v - 1)
              for s, table in (("calibration", {**MLP_FIT, **LANE_FIT}), ("held out", HELD_OUT))
              for n, (m, v) in table.items()]
    rows_ = []
    for structure in STRUCTURES:
        seed_mlp, seed_perc = mlp_ms(p, 30, 2, structure), warp_perceptron_ms(p, 30, aug=1, structure=structure)
        seed_flop = 30 * STEPS * MLP_FLOP + 30 * EPOCHS * N_TRAIN * PERC_FLOP
        for name, ms, flop, meas in (
            ("seed experiment (30 perceptrons by warps + 30 MLPs)", seed_mlp + seed_perc, seed_flop, 140.0),
            # Today's backend trains the two launch groups at the same time: 30 + 8 CTAs on
            # 132 SMs share no SM, so the longer group sets the time.
            *([("seed experiment, the two groups concurrent", max(seed_mlp, seed_perc), seed_flop, None)]
              if structure != "current" else []),
            ("3000 MLPs, 2 CTAs/SM", mlp_ms(p, 3000, 2, structure), 3000 * STEPS * MLP_FLOP, 1692.0),
            ("3000 MLPs, 1 CTA/SM", mlp_ms(p, 3000, 1, structure), 3000 * STEPS * MLP_FLOP, 2302.0),
            ("10^5 perceptrons, lanes", lanes_ms(p, 100_002) if structure == "current" else
             lanes_ms(p, 100_002, per_sm=8, walk=e_max_chunk_walk(16), delta=LANE_SCRATCH_DELTA),
             100_002 * EPOCHS * N_TRAIN * PERC_FLOP, 176.0),
        ):
            known = structure == "current"
            rows_.append(dict(structure=structure, workload=name, model_ms=ms, measured_ms=meas if known else None,
                              peak_percent=100 * flop / (ms / 1e3) / PEAK))
    steps = {}
    for s in STRUCTURES:
        split = []
        t1, issue, wait = cta_step(s, p, 1, True, split)
        steps[s] = dict(t1_cycles=t1, issue_cycles=issue, barrier_wait=wait, barriers=len(split), phases=split)
    return dict(constants=p, e_max_walk=E_MAX32, checks=checks, predictions=rows_, mlp_step=steps)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = ap.parse_args()
    r = report(calibrate())
    print("constants: " + ", ".join(f"{k} {v:.3g}" for k, v in r["constants"].items()) + f", E_MAX32 {E_MAX32:.2f}")
    print(f"\n{'check':<52} {'set':<12} {'model':>9} {'measured':>9} {'error':>7}")
    for c in r["checks"]:
        print(f"{c['name']:<52} {c['set']:<12} {c['model']:9.1f} {c['measured']:9.1f} {100 * c['error']:+6.0f}%")
    print(f"\n{'structure':<11} {'workload':<52} {'model ms':>9} {'measured':>9} {'% peak':>7}")
    for x in r["predictions"]:
        meas = f"{x['measured_ms']:9.0f}" if x["measured_ms"] else f"{'-':>9}"
        print(f"{x['structure']:<11} {x['workload']:<52} {x['model_ms']:9.0f} {meas} {x['peak_percent']:6.1f}%")
    for s, v in r["mlp_step"].items():
        print(f"\n{s} (augmentation, moments in L2): {v['barriers']} barriers, T1 {v['t1_cycles']:.0f} cycles/step, "
              f"issue {v['issue_cycles']:.0f}, barrier wait {100 * v['barrier_wait']:.0f}%")
        print("  " + ", ".join(f"{n} {t:.0f}" for n, t in v["phases"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)


if __name__ == "__main__":
    main()
