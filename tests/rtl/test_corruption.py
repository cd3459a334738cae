"""The verification can fail: a deliberately corrupted table entry is caught in cocotb."""

from dataclasses import replace

import numpy as np

from hgpipe.golden import run
from hgpipe.graph.contract import Folding
from hgpipe.rtl.lut import LutStage
from hgpipe.rtl.softmax import SoftmaxStage
from sim import runner
from sim.stage_io import stage_vectors


def _most_used_entry(table, x):
    idx = np.clip((x + table.offset[0, 0]) >> table.shift[0, 0], 0, table.bound)
    return int(np.bincount(idx.ravel()).argmax())


def test_corrupted_requant_entry_fails(micro_graphs):
    graphs, patches = micro_graphs
    g, p = graphs["w3a3"], patches["w3a3"]
    name = "blocks.0.attn.av.requant"
    st = g[name]
    f = Folding(tp=2, cip=4, cop=4)
    vec = stage_vectors(g, name, p, f)
    good = runner.run(LutStage(st.table, st.in_ranges[0], st.out_range, 2, 4, 16), "rq_good",
                      vec)
    assert good.bit_exact
    x = run(g, p, keep=[st.inputs[0]])[st.inputs[0]]
    k = _most_used_entry(st.table, x)
    entries = st.table.entries.copy()
    entries[0, 0, k] = st.out_range.hi if entries[0, 0, k] != st.out_range.hi else st.out_range.lo
    bad_table = replace(st.table, entries=entries)
    bad = runner.run(LutStage(bad_table, st.in_ranges[0], st.out_range, 2, 4, 16), "rq_bad", vec)
    assert not bad.bit_exact and bad.mismatches > 0


def test_corrupted_exp_entry_fails(micro_graphs):
    graphs, patches = micro_graphs
    g, p = graphs["w3a3"], patches["w3a3"]
    st = g["blocks.0.attn.softmax"]
    f = Folding(tp=1, cip=4, cop=4)
    vec = stage_vectors(g, st.name, p, f, head=0)
    entries = st.exp.entries.copy()
    entries[0, 0, 0] //= 2  # the row maximum's own term
    bad = replace(st, exp=replace(st.exp, entries=entries))
    result = runner.run(SoftmaxStage(bad, f), "softmax_bad", vec)
    assert result.mismatches > 0
