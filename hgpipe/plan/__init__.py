"""Planning: folding, grain, buffers and memory placement (``make_plan``), as a typed
``Plan``."""

from .build import build
from .plan import BufferPlan, DdrRegion, Grain, Offchip, Plan, StagePlan
from .search import check_offchip, make_plan

__all__ = ["BufferPlan", "DdrRegion", "Grain", "Offchip", "Plan", "StagePlan", "build",
           "check_offchip", "make_plan"]
