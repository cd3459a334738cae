"""Post-training quantization of a float ViT into the integer graph."""

from .bits import OBSERVERS, BitSpec, QuantConfig, TableSizes
from .calibrate import quantize_model

__all__ = ["OBSERVERS", "BitSpec", "QuantConfig", "TableSizes", "quantize_model"]
