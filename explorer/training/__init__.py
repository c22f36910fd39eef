"""The one trainer every method trains on (Coconut, CoT, no-CoT, recurrent depth, graph tokens, the
Base-LCM, the sentence decoder).

:class:`Trainer` owns the loop — the optimizer step, gradient clipping, the learning-rate schedule,
the progress bar, ``log.jsonl``, atomic checkpoints every few steps or minutes, and exact resume —
and each method supplies a :class:`Recipe`: how to build or load its model, the batches of an
epoch, the loss of a batch, an evaluation, and any extra state. In the style of SAELens's one
trainer with per-method pieces.
"""
from .checkpoint import load_pretrained, read_checkpoint, save_checkpoint
from .cli import config_from_dict, training_main
from .loop import LoopConfig, ProblemTrainer, Trainer, TrainState, total_steps
from .recipe import ProblemRecipe, Recipe, RecipeDefaults, check_same_run, length_grouped_batches, shuffled_batches
from .ship import SHIP_FILES, ship_checkpoint

__all__ = ["Trainer", "ProblemTrainer", "TrainState", "LoopConfig", "Recipe", "RecipeDefaults", "ProblemRecipe", "shuffled_batches", "length_grouped_batches", "check_same_run", "total_steps", "save_checkpoint",
           "read_checkpoint", "load_pretrained", "training_main", "config_from_dict", "ship_checkpoint", "SHIP_FILES"]
