"""The power-of-two-indexed table against a plain per-element reading of its definition."""

import numpy as np
import pytest

from hgpipe.graph import IntRange, PotTable
from hgpipe.quant.fit import fit_table


def lookup_one(t: PotTable, x: int, channel: int) -> int:
    g = channel // t.group_size if t.groups > 1 else 0
    k = 0
    for split in t.splits[g]:
        if x >= split:
            k += 1
    i = (x + int(t.offset[g][k])) // (2 ** int(t.shift[g][k]))  # floor, as >> on negatives
    i = min(max(i, 0), t.bound)
    return int(t.entries[g][k][i])


@pytest.mark.parametrize("groups, segments", [(1, 1), (3, 1), (1, 3), (2, 2)])
def test_apply_matches_definition(groups, segments):
    rng = np.random.default_rng(groups * 10 + segments)
    bound = 15
    t = PotTable(offset=rng.integers(-50, 50, (groups, segments)),
                 shift=rng.integers(0, 5, (groups, segments)),
                 entries=rng.integers(-8, 8, (groups, segments, bound + 1)),
                 splits=np.sort(rng.choice(np.arange(-100, 100), (groups, segments - 1),
                                           replace=False), axis=1),
                 group_size=4 if groups > 1 else 0)
    x = rng.integers(-300, 300, (5, groups * 4))
    y = t.apply(x)
    for idx in np.ndindex(x.shape):
        assert y[idx] == lookup_one(t, int(x[idx]), idx[-1])
    assert t.out_range == IntRange.of_array(t.entries)


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="negative shift"):
        PotTable(offset=[[0]], shift=[[-1]], entries=[[[0, 1]]], splits=np.zeros((1, 0)))
    with pytest.raises(ValueError, match="ascend"):
        PotTable(offset=[[0, 0, 0]], shift=[[0, 0, 0]], entries=np.zeros((1, 3, 2)),
                 splits=[[5, 5]])
    with pytest.raises(ValueError, match="group_size"):
        PotTable(offset=[[0], [0]], shift=[[0], [0]], entries=np.zeros((2, 1, 2)),
                 splits=np.zeros((2, 0)))


def test_fit_requant_is_close_to_ideal_rounding():
    """A linear requant never strays more than one LSB from ideal rounding, and the more
    bins per output level, the more often it is exact (bins of 2^s cannot all align with
    rounding boundaries 1/ratio apart)."""
    rng = np.random.default_rng(0)
    acc = rng.normal(0, 3000, 50_000).astype(np.int64)
    ratio = 1 / 700.0
    ideal = np.clip(np.rint(acc * ratio), -8, 7)
    exact = []
    for size in (16, 32, 64):
        t = fit_table(lambda x: x * ratio, acc, size, -8, 7)
        y = t.apply(acc)
        assert np.abs(y - ideal).max() <= 1
        assert t.bound == size - 1 and t.segments == 1
        exact.append(np.mean(y == ideal))
    assert exact[0] < exact[1] < exact[2]
    assert exact[2] > 0.9


def test_segments_follow_a_wide_range_function():
    """1/x over three decades: two segments of 64 beat one table of 128."""
    rng = np.random.default_rng(1)
    z = np.exp(rng.uniform(np.log(256), np.log(256 * 200), 20_000)).astype(np.int64)
    fn = lambda x: 2.0 ** 24 / x
    rel = {}
    for seg, size in ((1, 128), (2, 64)):
        t = fit_table(fn, z, size, 0, (1 << 16) - 1, seg, domain=(256, 256 * 200))
        rel[seg] = np.median(np.abs(t.apply(z) - fn(z)) / fn(z))
    assert rel[2] < rel[1]
    assert rel[2] < 0.05
