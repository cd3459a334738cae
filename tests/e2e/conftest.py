"""The end-to-end tests share the RTL tests' quantized vit-micro graphs."""

from ..rtl.conftest import micro_graphs  # noqa: F401  (the shared fixture)
