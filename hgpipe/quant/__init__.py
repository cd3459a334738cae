"""Post-training quantization of a float ViT into the integer graph."""

from .bits import OBSERVERS, BitSpec, Ptq, QuantConfig, TableSizes, read_steps, write_steps
from .calibrate import quantize_model

__all__ = ["OBSERVERS", "BitSpec", "Ptq", "QuantConfig", "TableSizes", "quantize_model", "read_steps",
           "write_steps"]
