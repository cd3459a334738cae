"""ViT description: typed config, timm-named weights, float reference forward."""

from .config import PRESETS, ViTConfig, load_config, preset
from .forward import forward
from .weights import ViTWeights, load_weights, random_weights, save_weights

__all__ = ["PRESETS", "ViTConfig", "ViTWeights", "forward", "load_config", "load_weights",
           "preset", "random_weights", "save_weights"]
