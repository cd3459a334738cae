"""Open synthesis estimates of the generated RTL: Yosys per distinct module, the longest
register-to-register paths walked on its netlist, and the clock they allow."""

from .design import DesignSynth, synth_design
from .yosys import ModuleSynth, synthesize

__all__ = ["DesignSynth", "ModuleSynth", "synth_design", "synthesize"]
