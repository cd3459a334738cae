"""The integer graph: typed stages, their exact integer semantics and derived widths."""

from .graph import INPUT, IntGraph
from .intrange import IntRange, dot_range
from .stages import (STAGE_KINDS, AttentionScores, AttentionValue, LayerNorm, Linear, Requant,
                     ResidualAdd, Softmax, Stage, Tokens)
from .table import PotTable

__all__ = ["INPUT", "STAGE_KINDS", "AttentionScores", "AttentionValue", "IntGraph", "IntRange",
           "LayerNorm", "Linear", "PotTable", "Requant", "ResidualAdd", "Softmax", "Stage",
           "Tokens", "dot_range"]
