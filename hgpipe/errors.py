"""User-facing errors: each carries one line naming the field, the value and what was expected."""


class HgpipeError(ValueError):
    """Base class for every error the CLI reports as a one-line message (exit code 2)."""


class ConfigError(HgpipeError):
    """A ViT configuration field is missing, unknown or out of range."""


class WeightsError(HgpipeError):
    """A weight tensor is missing, unexpected or mis-shaped."""


class QuantError(HgpipeError):
    """A quantization setting (bit widths, table sizes, calibration data) is invalid."""


class BoardError(HgpipeError):
    """A board file is missing or malformed."""


class PlanError(HgpipeError):
    """No plan meets the request (target II or FPS, budget)."""
