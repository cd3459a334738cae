"""numpy execution of each stage kind: the bit-exact oracle.

Every function takes the stage, its input arrays and an optional ``trace`` dict that
receives every intermediate under the names of ``Stage.ranges()``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..graph.layout import TokenLayout
from ..model.config import ClassToken
from ..graph.stages import (AttentionScores, AttentionValue, LayerNorm, Linear, Requant,
                            ResidualAdd, Softmax, Stage, Tokens)

Trace = dict[str, np.ndarray] | None
_EXACT = 1 << 53  # float64 holds every integer below this exactly


def int_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact integer matmul through BLAS: exact while every partial sum stays below 2^53."""
    k = a.shape[-1]
    bound = k * int(np.abs(a).max(initial=0)) * int(np.abs(b).max(initial=0))
    if bound < _EXACT:
        return np.rint(a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)
    return a.astype(np.int64) @ b.astype(np.int64)


def _record(trace: Trace, **arrays: np.ndarray) -> None:
    if trace is not None:
        trace.update(arrays)


def _heads(x: np.ndarray, part: int, heads: int, head_dim: int) -> np.ndarray:
    """(B, T, 3D) QKV -> (B, H, T, hd) for part 0 (Q), 1 (K) or 2 (V)."""
    b, t, _ = x.shape
    d = heads * head_dim
    return x[..., part * d:(part + 1) * d].reshape(b, t, heads, head_dim).transpose(0, 2, 1, 3)


def linear(st: Linear, x: np.ndarray, trace: Trace = None, layout: TokenLayout | None = None
           ) -> np.ndarray:
    if st.cls_only:
        x = x[:, layout.cls_row if layout else 0]
    acc = int_matmul(x, st.weight.T) + st.bias
    if trace is not None:
        lo_hi = np.stack([x.min(-1), x.max(-1)], -1)  # corners bound every product
        _record(trace, weight=st.weight, bias=st.bias, acc=acc,
                product=np.multiply.outer(lo_hi, st.weight.reshape(-1)))
    return acc


def requant(st: Requant, x: np.ndarray, trace: Trace = None) -> np.ndarray:
    t = st.table
    y = t.apply(x)
    if trace is not None:
        g, k = t.select(x)
        s = t.index_sum(x)
        _record(trace, index_sum=s, index=np.clip(s >> t.shift[g, k], 0, t.bound))
    return y


def tokens(st: Tokens, x: np.ndarray, trace: Trace = None, layout: TokenLayout | None = None
           ) -> np.ndarray:
    """In the model's order (class token first) as the stage says, then each real token to
    its row of ``layout``; padding rows zero."""
    n, _, d = x.shape
    extra = st.mode is ClassToken.EXTRA
    p = st.pos.shape[0] - extra                     # real patches
    cls = np.broadcast_to(st.cls.reshape(1, 1, d), (n, 1, d))
    if extra:
        tok = np.concatenate([cls, x[:, :p]], axis=1)
    else:
        tok = x[:, :p].copy()
        tok[:, :1] = cls
    s = tok + st.pos[None]
    _record(trace, sum=s)
    y = np.clip(s, st.out_format.lo, st.out_format.hi)
    if layout is None:
        return y
    out = np.zeros((n, layout.rows, d), dtype=np.int64)
    out[:, :layout.tokens] = y[:, layout.model_index()]
    return out


def layernorm(st: LayerNorm, x: np.ndarray, trace: Trace = None) -> np.ndarray:
    c = st.channels
    s1 = x.sum(-1, keepdims=True)
    s2 = (x * x).sum(-1, keepdims=True)
    d = c * x - s1
    v = c * s2 - s1 * s1
    r = st.rsqrt.apply(v)
    t = d * r
    u = t * st.gamma + st.beta
    y = np.clip(u >> st.shift, st.out_format.lo, st.out_format.hi)
    if trace is not None:
        _record(trace, s1=s1, s2=s2, c_s2=c * s2, s1_sq=s1 * s1, d=d, v=v, r=r, t=t, u=u,
                rsqrt_index_sum=st.rsqrt.index_sum(v), shifted=u >> st.shift)
    return y


def qk(st: AttentionScores, x: np.ndarray, trace: Trace = None) -> np.ndarray:
    q = _heads(x, 0, st.heads, st.head_dim)
    k = _heads(x, 1, st.heads, st.head_dim)
    s = int_matmul(q, k.transpose(0, 1, 3, 2))
    if trace is not None:
        _record(trace, product=q[..., :, None, :] * k[..., None, :, :])
    return s


def softmax(st: Softmax, x: np.ndarray, trace: Trace = None) -> np.ndarray:
    """Over the first ``row_len`` keys; keys past them (padding) get probability 0."""
    keys = x.shape[-1]
    x = x[..., :st.row_len]
    diff = x.max(-1, keepdims=True) - x
    e = st.exp.apply(diff)
    z = e.sum(-1, keepdims=True)
    r = st.recip.apply(z)
    prod = e * r + (1 << (st.shift - 1))
    y = np.clip(prod >> st.shift, st.out_format.lo, st.out_format.hi)
    if trace is not None:
        _record(trace, diff=diff, e=e, z=z, r=r, product=prod,
                exp_index_sum=st.exp.index_sum(diff), recip_index_sum=st.recip.index_sum(z))
    if keys > st.row_len:
        y = np.concatenate([y, np.zeros(y.shape[:-1] + (keys - st.row_len,), np.int64)], -1)
    return y


def av(st: AttentionValue, p: np.ndarray, x: np.ndarray, trace: Trace = None) -> np.ndarray:
    v = _heads(x, 2, st.heads, st.head_dim)
    o = int_matmul(p, v)
    b, h, t, hd = o.shape
    if trace is not None:
        _record(trace, product=np.multiply.outer(np.stack([p.min(), p.max()]),
                                                 np.stack([v.min(), v.max()])))
    return o.transpose(0, 2, 1, 3).reshape(b, t, h * hd)


def residual_add(st: ResidualAdd, skip: np.ndarray, branch: np.ndarray, trace: Trace = None
                 ) -> np.ndarray:
    k = st.skip_shift
    aligned = (skip + (1 << (k - 1))) >> k if k else skip
    s = aligned + branch
    _record(trace, aligned=aligned, sum=s)
    return np.clip(s, st.out_format.lo, st.out_format.hi)


OPS: dict[type, Callable[..., np.ndarray]] = {
    Linear: linear, Requant: requant, Tokens: tokens, LayerNorm: layernorm,
    AttentionScores: qk, Softmax: softmax, AttentionValue: av, ResidualAdd: residual_add,
}


def run_stage(st: Stage, inputs: list[np.ndarray], trace: Trace = None,
              layout: TokenLayout | None = None) -> np.ndarray:
    """Execute one stage on its input arrays, streamed as ``layout`` says (None: the
    model's order, unpadded); record ``out`` in the trace too."""
    kw = {"layout": layout} if isinstance(st, (Tokens, Linear)) else {}
    y = OPS[type(st)](st, *[np.asarray(a, dtype=np.int64) for a in inputs], trace=trace, **kw)
    _record(trace, out=y)
    return y
