"""Shipping a trained checkpoint inside the package as a registered model (with its provenance)."""
from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any, Sequence

from ..errors import SaveFileError
from ..io import atomic_dir, atomic_path
from ..paths import SHIPPED_DIR

SHIP_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def ship_checkpoint(src: str | Path, name: str, *, description: str, provenance: dict[str, Any],
                    dest_root: str | Path | None = None) -> Path:
    """Copy the model files of checkpoint folder ``src`` (no optimizer state) into
    ``explorer/models/shipped/<name>`` with a ``provenance.json`` (``description``, the command
    that reproduces it, its cost and measured results), swapped in atomically. At import the
    registry registers every such folder under its name (``explorer.load_model(name)``)."""
    src = Path(src)
    if not (src / "config.json").is_file() or not (src / "model.safetensors").is_file():
        raise SaveFileError(f"{src} is not a checkpoint folder (config.json and model.safetensors); "
                            "pass RUN_DIR/latest of a training run.")
    dest = (Path(dest_root) if dest_root is not None else SHIPPED_DIR) / name
    with atomic_dir(dest) as tmp:
        for f in SHIP_FILES:
            if (src / f).is_file():
                shutil.copyfile(src / f, tmp / f)
        (tmp / "provenance.json").write_text(json.dumps({"name": name, "description": description, **provenance},
                                                        indent=1) + "\n", encoding="utf-8")
    return dest


def run_cost(run_dirs: Sequence[str | Path], device: str, note: str | None = None) -> dict[str, Any]:
    """What the runs behind a model cost (a warm-up stage and the main run, say): training minutes
    (wall clock) and steps of each, from their checkpoints, their sum and the device, for provenance
    (a shipped model's folder among ``run_dirs`` — one a run started from with ``--base`` — adds the
    stages its ``provenance.json`` records);
    ``cpu_minutes`` too (the process's CPU time: all its threads, and nothing while it was paused)
    when every run recorded it, and ``note`` where a person has more to say of the cost."""
    stages: dict[str, dict[str, Any]] = {}
    for run_dir in run_dirs:
        state_file = Path(run_dir) / "latest" / "trainer_state.json"
        shipped = _shipped_provenance(run_dir)
        if shipped is not None:   # a shipped model a run went on from: its stages
            stages.update(_shipped_stages(shipped))
            continue
        name, n = Path(run_dir).name, 1
        while name in stages:   # a polish of a shipped model that was itself polished: both count
            n += 1
            name = f"{Path(run_dir).name}-{n}"
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            stages[name] = {"minutes": round(float(state["elapsed_s"]) / 60, 1), "steps": int(state["global_step"])}
            if state.get("cpu_s") is not None:   # checkpoints written before it was recorded have none
                stages[name]["cpu_minutes"] = round(float(state["cpu_s"]) / 60, 1)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise SaveFileError(f"{state_file} is missing or unreadable ({e}); train the run first.") from e
    cost: dict[str, Any] = {"device": device, "train_minutes": round(sum(v["minutes"] for v in stages.values()), 1)}
    if all("cpu_minutes" in v for v in stages.values()):
        cost["cpu_minutes"] = round(sum(v["cpu_minutes"] for v in stages.values()), 1)
    cost["stages"] = stages
    if note:
        cost["note"] = note
    return cost


def shipped_base(run_dirs: Sequence[str | Path]) -> dict[str, Any] | None:
    """The provenance of the shipped model among ``run_dirs`` that a run went on from (``--base``
    a shipped folder): its name, description, command, cost and its own base, if it had one — the
    chain that reproduces a model shipped over it; ``None`` when every run was trained here."""
    for run_dir in run_dirs:
        prov = _shipped_provenance(run_dir)
        if prov is not None:
            try:
                d = json.loads(prov.read_text(encoding="utf-8"))
                return {k: d[k] for k in ("name", "description", "command", "cost", "base") if k in d}
            except (OSError, ValueError) as e:
                raise SaveFileError(f"{prov} is unreadable ({e}); ship the base model again.") from e
    return None


def _shipped_provenance(run_dir: str | Path) -> Path | None:
    """``run_dir``'s ``provenance.json`` when it is a shipped model's folder (no run was trained in it:
    a run went on from it with ``--base``), else ``None``."""
    prov = Path(run_dir) / "provenance.json"
    trained = (Path(run_dir) / "latest" / "trainer_state.json").exists()
    return prov if prov.is_file() and not trained else None


def _shipped_stages(provenance: Path) -> dict[str, dict[str, Any]]:
    try:
        cost = json.loads(provenance.read_text(encoding="utf-8"))["cost"]
        stages = {str(k): dict(v) for k, v in cost["stages"].items()}
        if not all(isinstance(v.get("minutes"), (int, float)) for v in stages.values()):
            raise ValueError("a stage without minutes")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SaveFileError(f"{provenance} records no cost stages ({e}); pass the run folders it was trained in "
                            "instead.") from e
    return stages


def main(argv: list[str] | None = None) -> int:
    """``latent-explorer train ship RUN_DIR NAME --description D --command C [--results FILE ...]``:
    ship ``RUN_DIR/latest`` as NAME with its cost and measured results."""
    import argparse
    import sys

    from ..errors import ExplorerError

    ap = argparse.ArgumentParser(prog="latent-explorer train ship", description=main.__doc__)
    ap.add_argument("run_dir")
    ap.add_argument("name")
    ap.add_argument("--description", required=True)
    ap.add_argument("--command", required=True, help="the one command that reproduces the model")
    ap.add_argument("--device", default="cpu", help="where it was trained (for the cost)")
    ap.add_argument("--stages", nargs="*", default=[],
                    help="earlier runs it started from, or a shipped model's folder (their cost counts too)")
    ap.add_argument("--cost-note", default=None,
                    help="what a person has to add to the measured cost (a run paused while something else ran, say)")
    ap.add_argument("--results", nargs="*", default=[], help="JSON files of measured results (key: file stem)")
    ap.add_argument("--dest", default=None, help="ship into this folder instead of explorer/models/shipped")
    ap.add_argument("--copy-to", default=None,
                    help="also write the shipped folder here as one archive, NAME.tar (a device machine returns "
                         "at most 8 files; unpack it with `tar -xf NAME.tar -C explorer/models/shipped`)")
    args = ap.parse_args(argv)
    try:
        results = {}
        for f in args.results:
            try:
                results[Path(f).stem] = json.loads(Path(f).read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise SaveFileError(f"{f} is not a readable JSON file of results ({e}); run the evaluation first.") from e
        provenance = {"command": args.command, "cost": run_cost([*args.stages, args.run_dir], args.device, args.cost_note),
                      "results": results}
        base = shipped_base(args.stages)   # read before shipping: the model may be shipped over its own base
        if base is not None:
            provenance["base"] = base
        dest = ship_checkpoint(Path(args.run_dir) / "latest", args.name, description=args.description,
                               provenance=provenance, dest_root=args.dest)
        if args.copy_to:
            with atomic_path(Path(args.copy_to) / f"{args.name}.tar") as tmp, tarfile.open(tmp, "w") as tar:
                tar.add(dest, arcname=args.name)
    except ExplorerError as e:
        print(f"ship: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(dest)
    return 0
