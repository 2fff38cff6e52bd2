"""Exceptions with messages that name the problem and what was expected."""


class FerkitError(Exception):
    """Base class of ferkit's own errors."""


class CheckpointError(FerkitError, ValueError):
    """A checkpoint file cannot be read or does not fit the model."""


class ConfigError(FerkitError, ValueError):
    """A configuration key or value is invalid."""


class DatasetError(FerkitError, ValueError):
    """A data-set layout, label or file is invalid."""


class WeightsError(FerkitError, RuntimeError):
    """A weight file is missing, cannot be downloaded or fails verification."""
