"""hgpipe: hybrid-grained pipeline accelerators for Vision Transformers."""

__version__ = "0.1.0"
