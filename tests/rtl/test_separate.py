"""Separate compilation (``hgpipe.rtl.separate``): a part's module name changes with
anything that shapes its hardware and with nothing else; the accelerator's Verilog does
not depend on the number of worker processes; copies share one module."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from hgpipe.graph.contract import Folding
from hgpipe.plan import make_plan
from hgpipe.resources.board import load_board
from hgpipe.rtl.generate import generate
from hgpipe.rtl.linear import LinearStage
from hgpipe.rtl.separate import module_name


def test_module_name_follows_the_hardware_not_the_names(micro_graphs):
    graphs, _ = micro_graphs
    g = graphs["w3a3"]
    st, f = g["blocks.0.mlp.fc1"], Folding(1, 4, 4)
    base = module_name(LinearStage, (st, f))
    assert module_name(LinearStage, (replace(st, name="other", ref="x", out_scale=2.0), f)) \
        == base
    w = st.weight.copy()
    w[0, 0] = w[0, 0] + 1 if w[0, 0] < 3 else w[0, 0] - 1
    assert module_name(LinearStage, (replace(st, weight=w), f)) != base
    assert module_name(LinearStage, (st, Folding(1, 4, 8))) != base
    with pytest.raises(TypeError, match="cannot key"):
        module_name(LinearStage, (st, object()))


def test_generated_verilog_is_the_same_for_any_number_of_workers(micro_graphs):
    graphs, _ = micro_graphs
    g = graphs["w4a4"]
    plan = make_plan(g, load_board("vck190"), target_ii=1024)
    _, one, stats = generate(g, plan, workers=1)
    _, two, _ = generate(g, plan, workers=2)
    assert one == two
    text = one.verilog
    names = re.findall(r"^module (hgpipe_[a-z]+_[0-9a-f]{12})\(", text, re.M)
    assert len(names) == len(set(names)) == stats["structures"] <= stats["modules"]
    assert stats["modules"] < stats["parts"]    # the heads' softmax units are one module
    instances = re.findall(r"^  (hgpipe_[a-z]+_[0-9a-f]{12}) ", text, re.M)
    assert len(instances) == stats["parts"] and set(instances) == set(names)
