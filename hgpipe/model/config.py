"""The typed ViT description: fields, validation, presets and JSON/YAML loading."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..choice import Choice
from ..errors import ConfigError


class ClassToken(Choice):
    """Where the class token goes."""

    EXTRA = "extra"         # a token of its own (DeiT)
    REPLACE = "replace"     # in place of the first patch token (HG-PIPE)


MAX_MODEL_BYTES = 16 * 2**30     # one image's weights and activations, float64


@dataclass(frozen=True)
class ViTConfig:
    """A Vision Transformer's shape. Defaults are DeiT-tiny's.

    ``class_token='extra'`` prepends the class token (DeiT: 197 tokens at 224/16);
    ``'replace'`` overwrites the first patch token with it (HG-PIPE: 196 tokens)
    (``ClassToken``).
    """

    image_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    embed_dim: int = 192
    depth: int = 12
    num_heads: int = 3
    mlp_ratio: float = 4.0
    num_classes: int = 1000
    qkv_bias: bool = True
    class_token: ClassToken = ClassToken.EXTRA
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        for key in ("image_size", "patch_size", "in_chans", "embed_dim", "depth",
                    "num_heads", "num_classes"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"config: {key}={value!r}: expected a positive integer")
            if value <= 0:
                raise ConfigError(f"config: {key}={value}: expected a positive integer")
        if isinstance(self.mlp_ratio, bool) or not isinstance(self.mlp_ratio, (int, float)) \
                or not 0 < self.mlp_ratio < 1e6:
            raise ConfigError(f"config: mlp_ratio={self.mlp_ratio!r}: expected a positive number "
                              "below 1e6")
        hidden = self.embed_dim * self.mlp_ratio
        if abs(hidden - round(hidden)) > 1e-9:
            raise ConfigError(f"config: mlp_ratio={self.mlp_ratio}: embed_dim*mlp_ratio="
                              f"{hidden} must be a whole number of channels")
        if not isinstance(self.qkv_bias, bool):
            raise ConfigError(f"config: qkv_bias={self.qkv_bias!r}: expected true or false")
        try:
            object.__setattr__(self, "class_token",
                               ClassToken.parse(self.class_token, "config: class_token"))
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if isinstance(self.layer_norm_eps, bool) or \
                not isinstance(self.layer_norm_eps, (int, float)) or \
                not 0 < self.layer_norm_eps <= 1:
            raise ConfigError(f"config: layer_norm_eps={self.layer_norm_eps!r}: "
                              "expected a positive number of at most 1")
        if self.image_size % self.patch_size:
            raise ConfigError(f"config: patch_size={self.patch_size}: must divide "
                              f"image_size={self.image_size}")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"config: num_heads={self.num_heads}: must divide "
                              f"embed_dim={self.embed_dim}")
        if self.class_token is ClassToken.REPLACE and self.num_patches < 2:
            raise ConfigError(f"config: class_token='replace' needs at least 2 patches, "
                              f"image_size={self.image_size}/patch_size={self.patch_size} "
                              f"gives {self.num_patches}")
        # what one image's pass would hold (the weights and the largest activation, float64)
        # against a machine: a size no machine holds is refused before anything is allocated
        params = self.depth * (4 * self.embed_dim ** 2 + 2 * self.embed_dim * self.mlp_hidden) \
            + self.embed_dim * (self.patch_dim + self.num_classes + self.num_tokens)
        act = self.num_tokens * max(self.num_tokens * self.num_heads, self.mlp_hidden,
                                    self.patch_dim)
        need = 8 * (params + act)
        if need > MAX_MODEL_BYTES:
            raise ConfigError(f"config: embed_dim={self.embed_dim}, depth={self.depth}, "
                              f"image_size={self.image_size}, patch_size={self.patch_size}: "
                              f"one image would need {need / 2**30:,.1f} GiB (weights and "
                              f"activations); expected at most {MAX_MODEL_BYTES / 2**30:g} GiB")

    # Derived shapes ---------------------------------------------------------------------
    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @property
    def num_tokens(self) -> int:
        return self.num_patches + (1 if self.class_token is ClassToken.EXTRA else 0)

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden(self) -> int:
        return int(round(self.embed_dim * self.mlp_ratio))

    @property
    def patch_dim(self) -> int:
        return self.in_chans * self.patch_size * self.patch_size

    def replace(self, **changes: Any) -> "ViTConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(ViTConfig))

PRESETS: dict[str, ViTConfig] = {
    "deit-tiny": ViTConfig(embed_dim=192, depth=12, num_heads=3),
    "deit-small": ViTConfig(embed_dim=384, depth=12, num_heads=6),
    "deit-base": ViTConfig(embed_dim=768, depth=12, num_heads=12),
    # HG-PIPE's variant: the class token replaces the first patch token (196 tokens).
    "hgpipe-deit-tiny": ViTConfig(embed_dim=192, depth=12, num_heads=3, class_token="replace"),
    # Small models for tests, demos and simulation.
    "vit-digits": ViTConfig(image_size=8, patch_size=2, in_chans=1, embed_dim=32, depth=2,
                            num_heads=2, mlp_ratio=2.0, num_classes=10),
    "vit-digits-48": ViTConfig(image_size=8, patch_size=2, in_chans=1, embed_dim=48, depth=3,
                               num_heads=3, mlp_ratio=2.0, num_classes=10),
    "vit-micro": ViTConfig(image_size=16, patch_size=4, in_chans=3, embed_dim=16, depth=1,
                           num_heads=2, mlp_ratio=2.0, num_classes=10, class_token="replace"),
}

PRESET_NOTES = {
    "deit-tiny": "DeiT-tiny, 224/16, 197 tokens",
    "deit-small": "DeiT-small, 224/16, 197 tokens",
    "deit-base": "DeiT-base, 224/16, 197 tokens",
    "hgpipe-deit-tiny": "DeiT-tiny with the class token replacing patch 0 (196 tokens), as HG-PIPE",
    "vit-digits": "8x8 grey images (scikit-learn digits), 17 tokens",
    "vit-digits-48": "digits, 17 tokens, 48 channels x 3 blocks: the accuracy benchmark's model",
    "vit-micro": "16x16 RGB, 16 tokens, one block: for fast RTL simulation",
}


def preset(name: str) -> ViTConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"model: {name!r}: expected one of {', '.join(PRESETS)}") from None


def config_from_mapping(data: Mapping[str, Any], source: str = "config") -> ViTConfig:
    """Build a config from a mapping; missing keys take DeiT defaults, unknown keys fail."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of config keys, got "
                          f"{type(data).__name__}")
    for key in data:
        if key not in FIELDS:
            raise ConfigError(f"{source}: unknown key {key!r}: expected one of "
                              f"{', '.join(FIELDS)}")
    values = dict(data)
    # JSON has no int/float distinction for 4 vs 4.0; accept whole floats for integer fields.
    for key in ("image_size", "patch_size", "in_chans", "embed_dim", "depth", "num_heads",
                "num_classes"):
        v = values.get(key)
        if isinstance(v, float) and v.is_integer():
            values[key] = int(v)
    return ViTConfig(**values)


def load_config(path: str | Path) -> ViTConfig:
    """Read a config from a .json, .yaml or .yml file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config: file {str(p)!r} does not exist")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: file {str(p)!r} is not UTF-8 text (byte {exc.start}): "
                          "expected .json or .yaml") from None
    except OSError as exc:
        raise ConfigError(f"config: file {str(p)!r}: cannot read it ({exc.strerror})") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            raise ConfigError(f"config: file {str(p)!r}: expected a .json, .yaml or .yml suffix")
    except (json.JSONDecodeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config: file {str(p)!r} is not valid {suffix[1:]}: "
                          f"{str(exc).splitlines()[0]}") from None
    except Exception as exc:  # yaml.YAMLError and friends
        raise ConfigError(f"config: file {str(p)!r} is not valid {suffix[1:]}: "
                          f"{str(exc).splitlines()[0]}") from None
    return config_from_mapping(data if data is not None else {}, source=f"config {p.name}")
