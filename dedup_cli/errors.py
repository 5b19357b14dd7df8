"""Exceptions whose messages name the path and say what to do."""


class DedupError(Exception):
    """Base class: a problem the user can act on; the CLI prints it as one line."""


class InputError(DedupError):
    """A path given on the command line is missing or unusable."""


class UnreadableImage(DedupError):
    """One image could not be opened or decoded; the run skips it and goes on."""

    def __init__(self, path, reason):
        super().__init__(f"Cannot read '{path}': {reason} (skipped)")
        self.path = str(path)
        self.reason = reason


class ActionError(DedupError):
    """Carrying out a plan was refused for safety (e.g. a destination exists)."""


class MissingDependency(DedupError):
    """An optional package an option needs is not installed; the message says what to install."""


class ModelError(DedupError):
    """The CNN model or its runtime is missing or unusable; the message says what to run."""
