"""ViT weights under timm's parameter names: random by seed, or loaded from .npz/.safetensors/.pth."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import WeightsError
from .config import ViTConfig

MAX_WEIGHT = 1e6    # a trained ViT's weights are within about 10


@dataclass(frozen=True)
class Affine:
    """A linear layer (weight: out x in) or a LayerNorm (weight, bias: channels)."""

    weight: np.ndarray
    bias: np.ndarray | None


@dataclass(frozen=True)
class BlockWeights:
    norm1: Affine
    qkv: Affine
    proj: Affine
    norm2: Affine
    fc1: Affine
    fc2: Affine


@dataclass(frozen=True)
class ViTWeights:
    patch: Affine          # weight (D, C, P, P)
    cls_token: np.ndarray  # (1, 1, D)
    pos_embed: np.ndarray  # (1, T, D)
    blocks: tuple[BlockWeights, ...]
    norm: Affine
    head: Affine

    def state_dict(self) -> dict[str, np.ndarray]:
        sd: dict[str, np.ndarray] = {}

        def put(prefix: str, a: Affine) -> None:
            sd[f"{prefix}.weight"] = a.weight
            if a.bias is not None:
                sd[f"{prefix}.bias"] = a.bias

        put("patch_embed.proj", self.patch)
        sd["cls_token"] = self.cls_token
        sd["pos_embed"] = self.pos_embed
        for i, b in enumerate(self.blocks):
            for part, a in (("norm1", b.norm1), ("attn.qkv", b.qkv), ("attn.proj", b.proj),
                            ("norm2", b.norm2), ("mlp.fc1", b.fc1), ("mlp.fc2", b.fc2)):
                put(f"blocks.{i}.{part}", a)
        put("norm", self.norm)
        put("head", self.head)
        return sd


def expected_shapes(cfg: ViTConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor a ViT of this config needs, with its shape, in timm's naming."""
    d, h, p = cfg.embed_dim, cfg.mlp_hidden, cfg.patch_size
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed.proj.weight": (d, cfg.in_chans, p, p),
        "patch_embed.proj.bias": (d,),
        "cls_token": (1, 1, d),
        "pos_embed": (1, cfg.num_tokens, d),
    }
    for i in range(cfg.depth):
        b = f"blocks.{i}"
        shapes.update({
            f"{b}.norm1.weight": (d,), f"{b}.norm1.bias": (d,),
            f"{b}.attn.qkv.weight": (3 * d, d),
            f"{b}.attn.proj.weight": (d, d), f"{b}.attn.proj.bias": (d,),
            f"{b}.norm2.weight": (d,), f"{b}.norm2.bias": (d,),
            f"{b}.mlp.fc1.weight": (h, d), f"{b}.mlp.fc1.bias": (h,),
            f"{b}.mlp.fc2.weight": (d, h), f"{b}.mlp.fc2.bias": (d,),
        })
        if cfg.qkv_bias:
            shapes[f"{b}.attn.qkv.bias"] = (3 * d,)
    shapes.update({"norm.weight": (d,), "norm.bias": (d,),
                   "head.weight": (cfg.num_classes, d), "head.bias": (cfg.num_classes,)})
    return shapes


def from_state_dict(cfg: ViTConfig, sd: Mapping[str, np.ndarray], source: str = "weights"
                    ) -> ViTWeights:
    """Check names and shapes against the config, then build typed weights (float64)."""
    shapes = expected_shapes(cfg)
    missing = [k for k in shapes if k not in sd]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise WeightsError(f"{source}: missing tensor {missing[0]!r}{more}: expected shape "
                           f"{shapes[missing[0]]} for this config")
    extra = sorted(k for k in sd if k not in shapes)
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise WeightsError(f"{source}: unexpected tensor {extra[0]!r}{more}: not part of a "
                           f"ViT with depth={cfg.depth}, qkv_bias={cfg.qkv_bias}")
    arrays: dict[str, np.ndarray] = {}
    for k, shape in shapes.items():
        a = np.asarray(sd[k])
        if a.shape != shape:
            raise WeightsError(f"{source}: tensor {k!r} has shape {tuple(a.shape)}: "
                               f"expected {shape}")
        if not np.issubdtype(a.dtype, np.floating):
            raise WeightsError(f"{source}: tensor {k!r} has dtype {a.dtype}: expected floats")
        if not np.all(np.isfinite(a)):
            raise WeightsError(f"{source}: tensor {k!r} holds NaN or infinity")
        big = float(np.abs(a).max()) if a.size else 0.0
        if big > MAX_WEIGHT:
            raise WeightsError(f"{source}: tensor {k!r} has a value of magnitude {big:g}: "
                               f"expected at most {MAX_WEIGHT:g}")
        arrays[k] = a.astype(np.float64)

    def aff(prefix: str) -> Affine:
        return Affine(arrays[f"{prefix}.weight"], arrays.get(f"{prefix}.bias"))

    blocks = tuple(BlockWeights(
        norm1=aff(f"blocks.{i}.norm1"), qkv=aff(f"blocks.{i}.attn.qkv"),
        proj=aff(f"blocks.{i}.attn.proj"), norm2=aff(f"blocks.{i}.norm2"),
        fc1=aff(f"blocks.{i}.mlp.fc1"), fc2=aff(f"blocks.{i}.mlp.fc2"))
        for i in range(cfg.depth))
    return ViTWeights(patch=aff("patch_embed.proj"), cls_token=arrays["cls_token"],
                      pos_embed=arrays["pos_embed"], blocks=blocks, norm=aff("norm"),
                      head=aff("head"))


def random_weights(cfg: ViTConfig, seed: int = 0) -> ViTWeights:
    """Random weights by seed, scaled so activations keep unit order through the blocks."""
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes(cfg).items():
        if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
            sd[name] = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            sd[name] = 0.02 * rng.standard_normal(shape)
        elif name in ("cls_token", "pos_embed"):
            sd[name] = 0.5 * rng.standard_normal(shape)  # trained DeiTs: token-sized
        else:
            fan_in = int(np.prod(shape[1:]))
            sd[name] = rng.standard_normal(shape) / np.sqrt(fan_in)
    return from_state_dict(cfg, sd, source=f"random(seed={seed})")


def _read_pth(p: Path) -> Mapping[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise WeightsError(f"weights: {str(p)!r} is a PyTorch file but torch is not installed "
                           "(pip install torch, or convert it to .npz/.safetensors)") from None
    obj = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]  # DeiT's released checkpoints wrap the state dict
    if not isinstance(obj, Mapping):
        raise WeightsError(f"weights: {str(p)!r} holds a {type(obj).__name__}: expected a "
                           "state dict")
    return {k: v.detach().cpu().double().numpy() for k, v in obj.items()
            if hasattr(v, "detach")}


def _check_npz_sizes(cfg: ViTConfig, p: Path) -> None:
    """Refuse an .npz whose members would inflate past what the model's tensors can take
    (8 bytes an element and a header), before any is decompressed."""
    import zipfile
    shapes = expected_shapes(cfg)
    with zipfile.ZipFile(p) as zf:
        for info in zf.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if name not in shapes:
                continue    # reported by name when the dict is checked
            limit = 8 * int(np.prod(shapes[name])) + 4096
            if info.file_size > limit:
                raise WeightsError(f"weights {p.name}: tensor {name!r} inflates to "
                                   f"{info.file_size:,} bytes: expected shape {shapes[name]} "
                                   f"(at most {limit:,} bytes)")
        unknown = sorted(n for n in (i.filename[:-4] if i.filename.endswith(".npy")
                                     else i.filename for i in zf.infolist()) if n not in shapes)
        if unknown:
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise WeightsError(f"weights {p.name}: unexpected tensor {unknown[0]!r}{more}: not "
                               f"part of a ViT with depth={cfg.depth}, qkv_bias={cfg.qkv_bias}")


def load_weights(cfg: ViTConfig, path: str | Path) -> ViTWeights:
    """Load a timm-named state dict from .npz, .safetensors or .pth/.pt."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights: file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npz":
            _check_npz_sizes(cfg, p)
            with np.load(p, allow_pickle=False) as z:
                sd = {k: z[k] for k in z.files}
        elif suffix == ".safetensors":
            from safetensors.numpy import load_file
            sd = load_file(str(p))
        elif suffix in (".pth", ".pt"):
            sd = _read_pth(p)
        else:
            raise WeightsError(f"weights: file {str(p)!r}: expected a .npz, .safetensors or "
                               ".pth suffix")
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"weights: cannot read {str(p)!r} as {suffix[1:]}: "
                           f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                           ) from None
    return from_state_dict(cfg, sd, source=f"weights {p.name}")


def save_weights(weights: ViTWeights, path: str | Path) -> None:
    """Write a state dict as .npz or .safetensors (float32, timm names)."""
    p = Path(path)
    sd = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.state_dict().items()}
    if p.suffix == ".npz":
        np.savez(p, **sd)
    elif p.suffix == ".safetensors":
        from safetensors.numpy import save_file
        save_file(sd, str(p))
    else:
        raise WeightsError(f"weights: output {str(p)!r}: expected a .npz or .safetensors suffix")
