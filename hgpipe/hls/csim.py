"""C simulation of the HLS view with g++ (no Vitis needed).

The ``ap_int`` and ``hls::stream`` headers are Xilinx's own C models (Apache-2.0) as the
``hls4ml`` wheel ships them (``pip install hgpipe[hls]``): the same headers Vitis HLS
compiles, pinned by the wheel's version, found without importing hls4ml. Builds are
cached by the digest of every source and flag (``~/.cache/hgpipe/hls_build``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLAGS = ("-std=c++14", "-Wall", "-O0")     # warning-free, quick to build
# Optimised builds for long runs: at -O1 and above GCC reports the default constructor of
# Xilinx's ap_private (in the headers, not in hgpipe's code) as reading uninitialised bits.
FAST = ("-std=c++14", "-Wall", "-O2", "-Wno-uninitialized", "-Wno-maybe-uninitialized")
CACHE = Path.home() / ".cache" / "hgpipe" / "hls_build"


class HlsMissing(RuntimeError):
    """g++ or the ap_int headers are not installed."""


def ap_types() -> Path:
    """The directory of ``ap_int.h`` and ``hls_stream.h``."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise HlsMissing("the ap_int/hls_stream headers come with hls4ml: "
                         "pip install 'hgpipe[hls]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise HlsMissing(f"no ap_int.h in {path}")
    return path


def compiler() -> str:
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        raise HlsMissing("no C++ compiler: install g++ (or set CXX)")
    return cxx


@dataclass(frozen=True)
class Build:
    binary: Path
    warnings: str       # the compiler's diagnostics (empty when clean)
    cached: bool


def build(files: dict[str, str], sources: tuple[str, ...], cache: Path | None = None,
          flags: tuple[str, ...] | None = None) -> Build:
    """Compile and link ``sources`` (paths in ``files``), every file of ``files`` beside
    them."""
    cxx, inc = compiler(), ap_types()
    flags = flags or FLAGS
    digest = hashlib.sha256()
    for part in (cxx, *flags, *sources, *(f"{k}\0{v}" for k, v in sorted(files.items()))):
        digest.update(part.encode() + b"\0")
    where = (cache or CACHE) / digest.hexdigest()[:24]
    binary = where / "csim"
    if binary.is_file():
        return Build(binary, (where / "warnings.txt").read_text(), True)
    where.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=where.parent) as tmp:
        src = Path(tmp) / "src"
        write_tree(src, files)
        r = subprocess.run([cxx, *flags, "-isystem", str(inc), "-I", str(src),
                            *(str(src / m) for m in sources), "-o", str(Path(tmp) / "csim")],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"g++ failed on {', '.join(sources)}:\n{r.stderr[-4000:]}")
        (Path(tmp) / "warnings.txt").write_text(r.stderr)
        stage = Path(tmp) / "out"
        stage.mkdir()
        for name in ("csim", "warnings.txt"):
            os.replace(Path(tmp) / name, stage / name)
        try:
            os.replace(stage, where)
        except OSError:         # another process built the same digest first
            pass
    return Build(binary, (where / "warnings.txt").read_text(), False)


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def save_beats(path: Path, beats: np.ndarray) -> None:
    """Beats (n, lanes) as the testbench reads them: a beat a line."""
    b = np.asarray(beats, dtype=np.int64).reshape(len(beats), -1)
    path.write_text("".join(" ".join(map(str, row)) + "\n" for row in b.tolist()))


def load_beats(path: Path, lanes: int) -> np.ndarray:
    v = np.array(path.read_text().split(), dtype=np.int64)
    return v.reshape(-1, lanes)


def run(binary: Path, args: list[str], timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], capture_output=True, text=True,
                          timeout=timeout)
