"""The row-level schedule against hand-computed cases, deadlock detection, FIFO sizing."""

from __future__ import annotations

import pytest

from hgpipe.graph.kinds import InputGrain
from hgpipe.plan.schedule import Deadlock, Node, required_depths, simulate

ROW, TENSOR = InputGrain.ROW, InputGrain.TENSOR


def chain():
    # source: one token a cycle; A: 2 cycles a row, lag 2; B: 3 cycles a row, lag 3
    return [Node("patches", 1, 4, 4, 1, 0),
            Node("a", 1, 4, 4, 2, 2, inputs=(("patches", ROW),)),
            Node("b", 1, 4, 4, 3, 3, inputs=(("a", ROW),))]


def test_chain_by_hand():
    s = simulate(chain(), 2, {}, {})
    # F = max(F_prev + p, A + lag): A rows at 2,4,6,8 then 10..16; B rows at 5,8,11,14
    assert s.finish["a"][:4] == [2, 4, 6, 8]
    assert s.finish["b"] == [5, 8, 11, 14, 17, 20, 23, 26]
    assert s.done("b", 0) == 14 and s.done("b", 1) - s.done("b", 0) == 12  # II = 4 x 3


def test_tensor_grain_waits_for_the_whole_image():
    nodes = chain()[:2] + [Node("c", 1, 4, 4, 1, 1, inputs=(("a", TENSOR),))]
    s = simulate(nodes, 2, {}, {})
    assert s.finish["c"][0] == s.finish["a"][3] + 1  # needs a's last row of image 0
    assert s.finish["c"][4] == s.finish["a"][7] + 1


def fork_join():
    """x forks to a slow branch that needs its whole input (like attention) and to a skip
    path; both join in an add. The skip FIFO must hold a whole image or it deadlocks."""
    return [Node("patches", 1, 8, 8, 1, 0),
            Node("x", 1, 8, 8, 1, 1, inputs=(("patches", ROW),)),
            Node("att", 1, 8, 8, 1, 2, inputs=(("x", TENSOR),)),
            Node("add", 1, 8, 8, 1, 1, inputs=(("x", ROW), ("att", ROW)))]


def test_planned_depths_keep_the_unbounded_schedule():
    nodes = fork_join()
    free = simulate(nodes, 4, {}, {}, pace=8)
    depths, banks = required_depths(nodes, free)
    assert depths["x->add"] >= 8   # the skip path holds the whole image the branch waits for
    bounded = simulate(nodes, 4, depths, banks, pace=8)
    assert bounded.finish == free.finish
    back_to_back = simulate(nodes, 6, depths, banks)
    assert back_to_back.done("add", 5) - back_to_back.done("add", 4) == 8


def test_a_short_skip_fifo_deadlocks():
    nodes = fork_join()
    depths, banks = required_depths(nodes, simulate(nodes, 4, {}, {}, pace=8))
    depths["x->add"] = 4
    with pytest.raises(Deadlock, match="pipeline deadlock"):
        simulate(nodes, 2, depths, banks)


def test_the_vectorised_free_schedule_equals_the_row_by_row_one(graphs):
    """With no bound but the source's, ``simulate`` takes a vectorised pass; it must give
    the row-by-row resolution's times on a planned vit-digits pipeline, images paced or
    back to back."""
    from hgpipe.plan import make_plan
    from hgpipe.plan.schedule import _bounded
    from hgpipe.resources.board import load_board
    nodes = list(make_plan(graphs["w3a3"], load_board("zcu102"), target_ii=1500).nodes)
    for pace in (1500, None):
        fast, slow = simulate(nodes, 4, {}, {}, pace), _bounded(nodes, 4, {}, {}, pace)
        for k in slow.finish:
            assert fast.finish[k] == pytest.approx(slow.finish[k], abs=1e-6), k
            assert fast.taken[k] == pytest.approx(slow.taken[k], abs=1e-6), k


def test_the_free_schedule_does_not_depend_on_the_node_order():
    """Listed consumer first, the stages still get the times of the topological order."""
    nodes = fork_join()
    shuffled = [nodes[0], nodes[3], nodes[2], nodes[1]]
    assert simulate(shuffled, 3, {}, {}, pace=8).finish == simulate(nodes, 3, {}, {},
                                                                     pace=8).finish
