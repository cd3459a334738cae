"""The golden model: numpy execution of the integer graph, bit-exact by definition."""

from .ops import run_stage
from .run import logits, run

__all__ = ["logits", "run", "run_stage"]
