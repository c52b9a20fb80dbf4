"""The package's exceptions.

One base class, so callers can catch everything we raise; each subclass also
inherits the builtin it refines, so ``except ValueError`` keeps working.
"""


class FractalRoiTasksError(Exception):
    """Base class of every error raised by fractal-roi-tasks."""


class InvalidNameError(FractalRoiTasksError, ValueError):
    """A name given in an argument is empty or looks like a path."""


class NotFoundError(FractalRoiTasksError, LookupError):
    """A label image, table, channel or image the task needs does not exist."""


class AlreadyExistsError(FractalRoiTasksError, FileExistsError):
    """An output exists and the task was not asked to overwrite it."""


class InvalidInputError(FractalRoiTasksError, ValueError):
    """Input data has a shape, type or content the task cannot use."""
