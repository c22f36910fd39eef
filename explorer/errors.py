"""Typed errors. Every message names the fix.

All errors derive from :class:`ExplorerError`; most also derive from the matching
built-in (``ValueError``, ``LookupError`` …) so generic handlers still work.
"""
from __future__ import annotations


class ExplorerError(Exception):
    """Base class of every error the explorer raises on purpose."""


class InputError(ExplorerError, ValueError):
    """The input (text, messages, options) cannot be used as given."""


class EmptyInputError(InputError):
    """The text or message list is empty."""


class ContextLengthError(InputError):
    """The input is longer than the model's context window."""


class VectorError(InputError):
    """A vector is not finite or does not have the model's hidden size."""


class UnknownPointError(ExplorerError, KeyError):
    """A capture-point name is not known (see ``Trace.points`` / ``Model.points``)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(ExplorerError, LookupError):
    """A model name is neither registered, a local checkpoint folder, nor a Hub id."""


class OfflineError(ExplorerError, ConnectionError):
    """A model had to come from the Hub, but the Hub cannot be reached."""


class SaveFileError(ExplorerError, ValueError):
    """A save file is missing, corrupted, or was not written by latent-explorer."""


class DependencyError(ExplorerError, ImportError):
    """An optional package needed for this feature is not installed."""


__all__ = [
    "ExplorerError",
    "InputError",
    "EmptyInputError",
    "ContextLengthError",
    "VectorError",
    "UnknownPointError",
    "ModelNotFoundError",
    "OfflineError",
    "SaveFileError",
    "DependencyError",
]
