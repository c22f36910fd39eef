"""What a method supplies to the one trainer: the :class:`Recipe` protocol.

A recipe knows its model and its data; the loop (:mod:`explorer.training.loop`) knows nothing of
either. Every method (``thoughts``, ``recurrent``, ``concepts``, graph tokens) implements one.
"""
from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import torch

from ..errors import InputError


@runtime_checkable
class Recipe(Protocol):
    """The per-method pieces of a training run.

    ``name`` labels the progress bar; ``format`` tags the checkpoint (a resume refuses another
    format); ``resume_keys`` are the settings of :meth:`settings` that must match to resume."""

    name: str
    format: str
    resume_keys: Sequence[str]

    def settings(self) -> dict[str, Any]:
        """The method's settings as JSON (saved with every checkpoint)."""

    def n_examples(self) -> int:
        """How many training examples an epoch walks through (for the step count of a run)."""

    def build(self, resume: Path | None) -> torch.nn.Module:
        """The model: its weights from the checkpoint folder ``resume`` when resuming, else new
        (or from a base checkpoint the recipe was given)."""

    def save_model(self, model: torch.nn.Module, folder: Path) -> None:
        """Write the model's files (safetensors and whatever a loader needs) into ``folder``."""

    def epoch_batches(self, epoch: int) -> Sequence[Any]:
        """The batches of one epoch, drawn from ``(seed, epoch)`` only, so a resumed run sees the
        same batches as an uninterrupted one."""

    def loss(self, model: torch.nn.Module, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """The loss of one batch at global step ``step`` and extra values to log (numbers)."""

    def begin_epoch(self, epoch: int) -> bool:
        """Called before each epoch; return True to start a fresh optimizer (a curriculum stage)."""

    def evaluate(self, model: torch.nn.Module, epoch: int) -> dict[str, Any] | None:
        """Measure the model after an epoch (``None``: nothing to measure)."""

    def state_dict(self) -> dict[str, Any]:
        """Extra JSON-able state to checkpoint (e.g. the curriculum stage)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class RecipeDefaults:
    """The optional parts of a recipe, for recipes that have none of them: no curriculum (stage 0),
    no evaluation, no extra state."""

    def begin_epoch(self, epoch: int) -> int:
        return 0

    def evaluate(self, model: torch.nn.Module, epoch: int) -> dict[str, Any] | None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class ProblemRecipe(RecipeDefaults):
    """A recipe over a list of problems and a config dataclass (checked first): ``data``, ``cfg``,
    ``base`` (a checkpoint to start from), ``eval_data`` and ``eval_limit``."""

    def __init__(self, data: Sequence[dict[str, Any]], cfg: Any, *, base: str | Path | None = None,
                 eval_data: Sequence[dict[str, Any]] | None = None, eval_limit: int = 100) -> None:
        cfg.check()
        self.cfg, self.data, self.base = cfg, list(data), base
        self.eval_data, self.eval_limit = eval_data, eval_limit

    def settings(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def n_examples(self) -> int:
        return len(self.data)


def shuffled_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    """The indices ``0..n-1`` shuffled with ``random.Random(seed)``, cut into batches."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[s:s + batch_size] for s in range(0, n, batch_size)]


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int, *, by_length: bool = True
                           ) -> list[list[int]]:
    """The positions ``0..n-1`` of an epoch's examples cut into batches, drawn from ``seed`` only.

    ``by_length``: batches of examples of similar length, so that padding each batch to its longest
    example costs little (ProsQA in graph tokens: 25-30 % of a shuffled batch is padding, 5-8 % of a
    grouped one; ``python benchmarks/length_grouping.py``). transformers'
    ``get_length_grouped_indices`` draws them (a shuffle, then each mega-batch of up to 50 batches sorted
    by length, as ``Trainer(group_by_length=True)`` does); the batches are then shuffled, so an epoch
    does not run from long to short examples in each mega-batch. Without ``by_length``: the positions
    in order (the caller has shuffled its examples)."""
    n = len(lengths)
    if not by_length:
        return [list(range(s, min(s + batch_size, n))) for s in range(0, n, batch_size)]
    from transformers.trainer_pt_utils import get_length_grouped_indices

    g = torch.Generator().manual_seed(seed)
    order = get_length_grouped_indices(list(lengths), batch_size, generator=g)
    batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]


def check_same_run(where: Path, saved: dict[str, Any], now: dict[str, Any], keys: Sequence[str]) -> None:
    """Refuse to resume with other settings than the run was started with (``keys`` of the saved
    and the current settings, including ``n_train``, the number of training examples). A key the
    checkpoint does not record (a setting added since it was written) is not compared."""
    diff = [k for k in keys if k in saved and saved[k] != now.get(k)]
    if diff:
        what = ", ".join(f"{k}={saved.get(k)!r}" for k in diff)
        if diff == ["n_train"]:
            raise InputError(f"{where} was trained on {saved.get('n_train')} problems, not {now.get('n_train')}; "
                             "resume with the same data, or use another run_dir.")
        raise InputError(f"{where} was trained with other settings ({what}); resume with the same settings, "
                         "or use another run_dir.")
