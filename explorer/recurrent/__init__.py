"""Recurrent depth (Geiping et al. 2025, "Huginn"): a prelude–core–coda model whose core block is
iterated ``r`` times, adaptive-exit criteria, an engine that records one trajectory of iterations
per token, a trainer on ProsQA (:mod:`.train`, with :mod:`.data` and :mod:`.losses`), its ProsQA
evaluation (:mod:`.evaluate`), where the core's lookup looks (:mod:`.attention`), and a loader for
the public Huginn-0125 checkpoint.

Importing this package registers the model types ``latent_recurrent`` and ``huginn_raven`` with
``AutoConfig`` / ``AutoModelForCausalLM`` (no remote code).
"""
from .exits import CRITERIA, DEFAULT_THRESHOLDS, exit_iteration, exit_values
from .model import (HuginnConfig, HuginnForCausalLM, RecurrentConfig, RecurrentForCausalLM, build_model,
                    load_huginn, sample_recurrence, tiny_config)
from .engine import (GenerationResult, IterationResult, RecurrentModel, figure, generate, initial_states, is_recurrent,
                     iterate, load_recurrent, trajectory_pca)

__all__ = ["CRITERIA", "DEFAULT_THRESHOLDS", "exit_iteration", "exit_values", "RecurrentConfig", "HuginnConfig",
           "RecurrentForCausalLM", "HuginnForCausalLM", "build_model", "tiny_config", "load_huginn",
           "sample_recurrence", "iterate", "generate", "IterationResult", "GenerationResult", "initial_states",
           "trajectory_pca", "figure", "RecurrentModel", "load_recurrent", "is_recurrent"]
