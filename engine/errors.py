"""The three ways a job can end without a result."""

__all__ = ["InputError", "JobCancelled", "JobFailed"]


class InputError(ValueError):
    """Bad input from a user. The message is one clear sentence meant for that user."""


class JobCancelled(Exception):
    """The job was cancelled before it finished."""


class JobFailed(Exception):
    """The job failed for a reason that is not the user's input (out of memory, an internal error)."""
