"""Stream test vectors: what a testbench feeds a component and what it must produce.

Beats are (n, lanes) integer arrays; lane ``e`` of a beat occupies payload bits
``[e*bits, (e+1)*bits)`` in two's complement. Written as one .npz the cocotb process reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Stream:
    beats: np.ndarray   # (n, lanes) int
    bits: int
    signed: bool

    def pack(self) -> list[int]:
        mask = (1 << self.bits) - 1
        out = []
        for row in np.asarray(self.beats, dtype=np.int64):
            v = 0
            for e, x in enumerate(row.tolist()):
                v |= (int(x) & mask) << (e * self.bits)
            out.append(v)
        return out

    def unpack(self, words: list[int]) -> np.ndarray:
        lanes = self.beats.shape[1]
        mask = (1 << self.bits) - 1
        out = np.zeros((len(words), lanes), dtype=np.int64)
        for i, w in enumerate(words):
            for e in range(lanes):
                x = (w >> (e * self.bits)) & mask
                if self.signed and x >> (self.bits - 1):
                    x -= 1 << self.bits
                out[i, e] = x
        return out


@dataclass
class Vectors:
    inputs: dict[str, Stream]     # port name -> stream
    output: Stream                # expected, port "o"
    images: int = 1
    stall: float = 0.0
    seed: int = 0
    timeout: int = 1_000_000      # cycles
    meta: dict = field(default_factory=dict)
    memory: dict[int, bytes] = field(default_factory=dict)   # off-chip preload: base -> bytes

    def save(self, path: Path) -> None:
        arrays = {"out": self.output.beats, "out_meta": np.array([self.output.bits,
                                                                    int(self.output.signed)]),
                  "run": np.array([self.images, self.seed, self.timeout]),
                  "stall": np.array([self.stall]), "ports": np.array(list(self.inputs)),
                  "meta": np.array(json.dumps(self.meta, sort_keys=True))}
        for name, s in self.inputs.items():
            arrays[f"in_{name}"] = s.beats
            arrays[f"in_{name}_meta"] = np.array([s.bits, int(s.signed)])
        for base, data in self.memory.items():
            arrays[f"mem_{base}"] = np.frombuffer(data, dtype=np.uint8)
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: Path) -> "Vectors":
        z = np.load(path)
        inputs = {str(n): Stream(z[f"in_{n}"], int(z[f"in_{n}_meta"][0]),
                                 bool(z[f"in_{n}_meta"][1])) for n in z["ports"]}
        images, seed, timeout = (int(v) for v in z["run"])
        return cls(inputs=inputs, output=Stream(z["out"], int(z["out_meta"][0]),
                                                bool(z["out_meta"][1])),
                   images=images, stall=float(z["stall"][0]), seed=seed, timeout=timeout,
                   meta=json.loads(str(z["meta"])) if "meta" in z else {},
                   memory={int(k[4:]): z[k].tobytes() for k in z.files
                           if k.startswith("mem_")})


def io_beats(graph, plan, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(input beats, expected logit beats) of the whole accelerator of ``plan``:
    ``patches`` (zero rows appended to the design's patch rows) in the first stage's beat
    order, and the golden model's logits of ``graph`` (the caller's, not the design's)
    in the model's token order, unpadded: the design's padding must not change them."""
    from ..graph.contract import to_beats
    from ..graph.layout import TokenLayout
    from .run import run as golden_run
    first, last = graph.stages[0], graph.output
    f0, fl = plan.stage(first.name).folding, plan.stage(last.name).folding
    model = graph.with_layout(TokenLayout.model(graph.config))
    logits = golden_run(model, patches, keep={last.name})[last.name]
    streamed = plan.laid_out(graph).stream_patches(patches)
    return to_beats(streamed, f0.tp, f0.cip), to_beats(logits[:, None, :], 1, fl.cop)


def top_vectors(graph, acc, patches: np.ndarray, stall: float = 0.0,
                seed: int = 0, cycles_per_image: int = 0) -> Vectors:
    """The whole accelerator's vectors (``io_beats`` on ``s_axis`` and ``m_axis``) and the
    metadata the top-level testbench needs (beats per image, the stages' busy counters in
    the status registers' order, DDR regions and their preload)."""
    x, y = io_beats(graph, acc.plan, patches)
    last = graph.output
    images = len(patches)
    slow = 1.0 / (1.0 - stall) ** 2 if stall else 1.0
    timeout = int((images + 4) * max(cycles_per_image, 1) * 3 * slow) + 50_000
    return Vectors(
        inputs={"s_axis": Stream(x, graph.input_range.bits, graph.input_range.signed)},
        output=Stream(y, last.out_range.bits, last.out_range.signed),
        images=images, stall=stall, seed=seed, timeout=timeout,
        meta={"beats_per_image_in": acc.beats_per_image_in,
              "beats_per_image_out": acc.beats_per_image_out,
              # the status registers' counters, in their order (none: no status registers)
              "stages": acc.netlist.counter_names,
              "ddr_regions": [[base, lay.ring_bytes] for _, lay, base in acc.ddr_regions()]},
        memory=acc.ddr_images())
