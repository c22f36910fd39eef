"""latent-explorer: look inside language models' latent spaces.

Engines produce :class:`Trajectory` objects (layers of a forward pass, continuous thoughts,
recurrent iterations, concept paths); probes read them; projections place them; the notebook
widgets in the sibling package ``widgets`` show them.
"""
from .errors import (ContextLengthError, DependencyError, EmptyInputError, ExplorerError, InputError,
                     ModelNotFoundError, OfflineError, SaveFileError, UnknownPointError, VectorError)
from . import concepts
from .arithmetic import analogy, combine, evaluate, interpolate, parse_expression
from .loading import load_model
from .model import Model
from .protocol import EmbeddingSpace
from .probes import LogitLens, TokenProbe
from .projection import Projection, fit_projection
from .trace import Trace
from .trajectory import Step, TokenTable, Trajectory

__version__ = "0.1.0"

__all__ = [
    "load_model", "Model", "EmbeddingSpace", "fit_projection", "Projection",
    "concepts", "parse_expression", "combine", "evaluate", "analogy", "interpolate", "Trace", "Trajectory", "Step", "TokenTable", "LogitLens", "TokenProbe",
    "ExplorerError", "InputError", "EmptyInputError", "ContextLengthError", "VectorError", "UnknownPointError",
    "ModelNotFoundError", "OfflineError", "SaveFileError", "DependencyError",
]
