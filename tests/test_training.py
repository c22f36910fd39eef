"""The one trainer (explorer.training): exact resume, schedules, budgets, safe checkpoints, typed errors."""
from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from explorer.errors import InputError, SaveFileError
from explorer.training import LoopConfig, Recipe, Trainer


class ToyRecipe:
    """A tiny regression recipe: y = x·w + noise drawn from the global RNG (so RNG state matters)."""

    name = "toy"
    format = "test.toy/1"
    resume_keys = ("width",)

    def __init__(self, n: int = 24, width: int = 4, stages: int = 1, noise: float = 0.1,
                 interrupt_at: int | None = None, terminate_at: int | None = None) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, width, generator=g)
        self.y = self.x @ torch.arange(1.0, width + 1)
        self.width, self.stages, self.noise, self.interrupt_at = width, stages, noise, interrupt_at
        self.terminate_at = terminate_at
        self.evaluated: list[int] = []

    def settings(self) -> dict[str, Any]:
        return {"width": self.width}

    def n_examples(self) -> int:
        return len(self.x)

    def build(self, resume: Path | None) -> torch.nn.Module:
        m = torch.nn.Linear(self.width, 1)
        if resume is not None:
            from safetensors.torch import load_file

            m.load_state_dict(load_file(resume / "model.safetensors"))
        return m

    def save_model(self, model: torch.nn.Module, folder: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")

    def epoch_batches(self, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(epoch))
        return [(self.x[order[i:i + 8]], self.y[order[i:i + 8]]) for i in range(0, len(order), 8)]

    def loss(self, model: torch.nn.Module, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        if step == self.interrupt_at:
            raise KeyboardInterrupt   # as Ctrl-C (or a killed session) would, mid-epoch
        if step == self.terminate_at:
            os.kill(os.getpid(), signal.SIGTERM)   # `kill PID`, as a background run is stopped
        x, y = batch
        x = x + self.noise * torch.randn_like(x)   # global RNG: resume must restore it
        return torch.nn.functional.mse_loss(model(x).squeeze(-1), y), {"n": len(x)}

    def begin_epoch(self, epoch: int) -> int:
        return min(epoch, self.stages - 1)

    def evaluate(self, model: torch.nn.Module, epoch: int) -> dict[str, Any] | None:
        self.evaluated.append(epoch)
        with torch.no_grad():
            return {"mse": float(torch.nn.functional.mse_loss(model(self.x).squeeze(-1), self.y))}

    def state_dict(self) -> dict[str, Any]:
        return {"evaluated": self.evaluated}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.evaluated = list(state.get("evaluated", []))


def weights(t: Trainer) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in t.model.parameters()])


def test_the_toy_is_a_recipe():
    assert isinstance(ToyRecipe(), Recipe)


@pytest.mark.parametrize("schedule,stages", [("constant", 1), ("cosine", 3), ("onecycle", 1)])
def test_a_resumed_run_reaches_the_same_weights(tmp_path, schedule, stages):
    loop = LoopConfig(num_epochs=4, batch_size=8, lr=0.05, schedule=schedule, warmup_steps=2, save_every=1000,
                      device="cpu")
    full = Trainer(ToyRecipe(stages=stages), tmp_path / "full", loop, progress=False)
    full.train()
    part = Trainer(ToyRecipe(stages=stages, interrupt_at=5), tmp_path / "part", loop, progress=False)
    with pytest.raises(KeyboardInterrupt):
        part.train()                                 # interrupted mid-epoch 1: a checkpoint is saved first
    assert part.state.global_step == 5 and part.state.batch_in_epoch == 2
    resumed = Trainer(ToyRecipe(stages=stages), tmp_path / "part", loop, progress=False)
    assert resumed.state.global_step == 5
    resumed.train()
    assert resumed.state.global_step == full.state.global_step == 12
    assert torch.equal(weights(resumed), weights(full))
    assert [r[1] for r in resumed.state.losses] == [r[1] for r in full.state.losses]
    assert resumed.recipe.evaluated == full.recipe.evaluated == [1, 2, 3, 4]
    # a new curriculum stage gets a fresh optimizer: Adam's step counts restart at each stage
    steps = {int(s["step"]) for s in full.optimizer.state_dict()["state"].values()}
    assert steps == {int(s["step"]) for s in resumed.optimizer.state_dict()["state"].values()}
    assert steps == ({6} if stages > 1 else {12})


def test_log_and_checkpoint_files(tmp_path):
    t = Trainer(ToyRecipe(), tmp_path / "run", LoopConfig(num_epochs=2, batch_size=8, save_every=2, device="cpu"),
                progress=False)
    t.train()
    latest = tmp_path / "run" / "latest"
    assert sorted(p.name for p in latest.iterdir()) == ["model.safetensors", "optimizer.pt", "trainer_state.json"]
    state = json.loads((latest / "trainer_state.json").read_text())
    assert state["format"] == "test.toy/1" and state["global_step"] == 6 and state["config"] == {"width": 4}
    lines = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [x["checkpoint"] for x in lines if "checkpoint" in x] == [2, 4, 6, 6]
    assert [x["eval"]["epoch"] for x in lines if "eval" in x] == [1, 2]
    assert not list((tmp_path / "run").glob(".*"))   # no temporary folders left behind


def test_resume_refuses_other_settings_and_formats(tmp_path):
    loop = LoopConfig(num_epochs=1, batch_size=8, device="cpu")
    Trainer(ToyRecipe(), tmp_path / "run", loop, progress=False).train()
    with pytest.raises(InputError, match="other settings"):
        Trainer(ToyRecipe(), tmp_path / "run", replace(loop, batch_size=4), progress=False)
    with pytest.raises(InputError, match="trained on 24 problems, not 16"):
        Trainer(ToyRecipe(n=16), tmp_path / "run", loop, progress=False)
    other = ToyRecipe()
    other.format = "test.other/1"
    with pytest.raises(SaveFileError, match="delete it to start over"):
        Trainer(other, tmp_path / "run", loop, progress=False)


def test_a_pickled_optimizer_file_is_refused(tmp_path):
    """optimizer.pt is read with weights_only=True: a file that would run code is a typed error."""
    loop = LoopConfig(num_epochs=1, batch_size=8, device="cpu")
    Trainer(ToyRecipe(), tmp_path / "run", loop, progress=False).train()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"optimizer": Evil()}, tmp_path / "run" / "latest" / "optimizer.pt")
    with pytest.raises(SaveFileError, match="not a complete trainer checkpoint"):
        Trainer(ToyRecipe(), tmp_path / "run", loop, progress=False)


def test_a_sigterm_saves_a_checkpoint_and_the_handler_is_put_back(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    t = Trainer(ToyRecipe(terminate_at=5), tmp_path / "run", LoopConfig(num_epochs=4, batch_size=8, save_every=1000,
                                                                        device="cpu"), progress=False)
    with pytest.raises(KeyboardInterrupt):
        t.train()
    assert json.loads((tmp_path / "run" / "latest" / "trainer_state.json").read_text())["global_step"] == 5
    assert signal.getsignal(signal.SIGTERM) == before
    assert Trainer(ToyRecipe(), tmp_path / "run", t.loop, progress=False).train().global_step == 12


def test_the_minutes_budget_stops_with_a_checkpoint(tmp_path):
    loop = LoopConfig(num_epochs=50, batch_size=8, save_every=1000, max_minutes=1e-9, device="cpu")
    st = Trainer(ToyRecipe(), tmp_path / "run", loop, progress=False).train()
    assert st.global_step == 1
    assert json.loads((tmp_path / "run" / "latest" / "trainer_state.json").read_text())["global_step"] == 1


@pytest.mark.parametrize("bad", [dict(lr=float("nan")), dict(lr=0.0), dict(batch_size=0), dict(threads=-1),
                                 dict(schedule="linear"), dict(precision="fp8"), dict(grad_clip=-1.0),
                                 dict(max_minutes=0.0), dict(max_steps=-1)])
def test_bad_loop_settings_are_typed_errors(tmp_path, bad):
    with pytest.raises(InputError):
        Trainer(ToyRecipe(), tmp_path / "run", LoopConfig(device="cpu", **bad), progress=False)


def test_cosine_schedule_warms_up_and_ends_at_a_tenth(tmp_path):
    t = Trainer(ToyRecipe(), tmp_path / "run", LoopConfig(num_epochs=4, batch_size=8, lr=1.0, schedule="cosine",
                                                         warmup_steps=2, device="cpu"), progress=False)
    assert t.lr_at(0) == pytest.approx(0.5) and t.lr_at(1) == pytest.approx(1.0)
    assert t.lr_at(t.total - 1) == pytest.approx(0.1, abs=0.03) and t.lr_at(10 ** 6) == pytest.approx(0.1)


def test_a_setting_added_since_the_checkpoint_is_not_compared(tmp_path):
    """A checkpoint written before a setting existed resumes (the setting is not in its config);
    a recorded setting that changed is still refused."""
    loop = LoopConfig(num_epochs=2, batch_size=8, device="cpu", max_steps=3)
    Trainer(ToyRecipe(), tmp_path / "run", loop, progress=False).train()

    class Newer(ToyRecipe):
        resume_keys = ("width", "new_setting")

        def settings(self):
            return {**super().settings(), "new_setting": "x"}

    t = Trainer(Newer(), tmp_path / "run", replace(loop, max_steps=None), progress=False)
    assert t.state.global_step == 3
    t.train()
    with pytest.raises(InputError, match="new_setting='x'"):
        other = Newer()
        other.settings = lambda: {"width": 4, "new_setting": "y"}
        Trainer(other, tmp_path / "run", loop, progress=False)


class WaitingRecipe(ToyRecipe):
    """Each step waits without working, as a run paused by SIGSTOP (while CI runs, say) does."""

    def loss(self, model: torch.nn.Module, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, Any]]:
        import time

        time.sleep(0.05)
        return super().loss(model, batch, step)


def test_the_cost_counts_cpu_time_apart_from_waiting_and_says_when_it_is_unknown(tmp_path):
    from explorer.training.ship import run_cost

    loop = LoopConfig(num_epochs=2, batch_size=8, save_every=1000, device="cpu")
    t = Trainer(WaitingRecipe(), tmp_path / "run", loop, progress=False)
    t.train()
    st = t.state
    assert st.elapsed_s >= 6 * 0.05 and 0 < st.cpu_s < st.elapsed_s / 2   # six steps of waiting are not CPU time
    cost = run_cost([tmp_path / "run"], "cpu", "a note")
    assert cost["cpu_minutes"] == cost["stages"]["run"]["cpu_minutes"] == round(st.cpu_s / 60, 1)
    assert cost["note"] == "a note" and cost["train_minutes"] == round(st.elapsed_s / 60, 1)
    # a checkpoint from before cpu_s was recorded: resumed, its CPU time stays unknown, and the cost omits it
    state_file = tmp_path / "run" / "latest" / "trainer_state.json"
    old = json.loads(state_file.read_text())
    del old["cpu_s"]
    state_file.write_text(json.dumps(old))
    more = Trainer(ToyRecipe(), tmp_path / "run", replace(loop, num_epochs=3), progress=False)
    assert more.state.cpu_s is None
    more.train()
    assert json.loads(state_file.read_text())["cpu_s"] is None
    assert "cpu_minutes" not in run_cost([tmp_path / "run"], "cpu")


def test_a_run_from_a_shipped_model_counts_the_shipped_models_cost(tmp_path):
    """`train ship RUN NAME --stages SHIPPED_FOLDER`: a run that went on from a shipped model (its --base) adds
    the stages that model's provenance records, and keeps that provenance as its base (the chain that reproduces
    it); a folder that records no stages is a typed error naming the fix."""
    from explorer.errors import SaveFileError
    from explorer.training.ship import run_cost, ship_checkpoint, shipped_base

    loop = LoopConfig(num_epochs=1, batch_size=8, save_every=1000, device="cpu")
    Trainer(ToyRecipe(), tmp_path / "more", loop, progress=False).train()
    earlier = {"device": "cpu", "train_minutes": 12.5, "stages": {"m-warm": {"minutes": 2.5, "steps": 10},
                                                                   "m": {"minutes": 10.0, "steps": 40}}}
    (tmp_path / "m.json").write_text(json.dumps({"cost": earlier}))
    src = tmp_path / "ckpt"
    src.mkdir()
    for f in ("config.json", "model.safetensors"):
        (src / f).write_text("{}")
    shipped = ship_checkpoint(src, "m", description="d", provenance={"cost": earlier}, dest_root=tmp_path / "shipped")
    cost = run_cost([shipped, tmp_path / "more"], "cpu")
    assert list(cost["stages"]) == ["m-warm", "m", "more"]
    assert cost["train_minutes"] == round(12.5 + cost["stages"]["more"]["minutes"], 1)
    assert "cpu_minutes" not in cost    # the shipped stages did not record CPU time
    assert shipped_base([shipped, tmp_path / "more"]) == {"name": "m", "description": "d", "cost": earlier}
    assert shipped_base([tmp_path / "more"]) is None
    earlier["stages"]["more"] = {"minutes": 1.0, "steps": 4}   # the shipped model had a run of the same name
    (shipped / "provenance.json").write_text(json.dumps({"cost": earlier}))
    assert list(run_cost([shipped, tmp_path / "more"], "cpu")["stages"]) == ["m-warm", "m", "more", "more-2"]
    (shipped / "provenance.json").write_text(json.dumps({"cost": {"device": "cpu"}}))
    with pytest.raises(SaveFileError, match="pass the run folders"):
        run_cost([shipped, tmp_path / "more"], "cpu")


def test_the_optimizer_is_fused_on_a_gpu_only(tmp_path):
    t = Trainer(ToyRecipe(), tmp_path / "run", LoopConfig(num_epochs=1, batch_size=8, device="cpu"), progress=False)
    assert t.optimizer.param_groups[0]["fused"] is False
    t.device = torch.device("cuda")   # what the rule sees on a GPU (fused AdamW also runs on CPU tensors)
    opt, _ = t._new_optimizer()
    assert opt.param_groups[0]["fused"] is True


def test_length_grouped_batches_cover_the_epoch_once_with_little_padding():
    import math
    import random

    from explorer.training import length_grouped_batches

    rng = random.Random(0)
    lengths = [rng.randint(60, 220) for _ in range(1000)]
    grouped = length_grouped_batches(lengths, 32, seed=3)
    assert sorted(i for b in grouped for i in b) == list(range(1000))          # every example once
    assert len(grouped) == math.ceil(1000 / 32) and max(map(len, grouped)) == 32
    assert grouped == length_grouped_batches(lengths, 32, seed=3) != length_grouped_batches(lengths, 32, seed=4)

    def real_share(batches: list[list[int]]) -> float:
        return sum(lengths[i] for b in batches for i in b) / sum(len(b) * max(lengths[i] for i in b) for b in batches)

    plain = length_grouped_batches(lengths, 32, seed=3, by_length=False)
    assert plain == [list(range(s, min(s + 32, 1000))) for s in range(0, 1000, 32)]     # in order: the caller shuffled
    assert real_share(plain) < 0.8 < 0.9 < real_share(grouped)
    # the batches are shuffled too: an epoch does not run from long to short within each mega-batch
    longest = [max(lengths[i] for i in b) for b in grouped]
    assert longest != sorted(longest, reverse=True) and longest != sorted(longest)
