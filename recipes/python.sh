# Sourced by the recipes (from the repository root): which python runs them. Sets PY (the
# interpreter) and LE (the `latent-explorer` command, an array).
#   With the project's environment (BIN, default .venv/bin): its own.
#   Without it (a GPU machine's image, docs/thoughts.md): PYTHON (default python3) with this checkout on
#   PYTHONPATH, and the transformers the suite runs on, carried as a wheel (`make device-wheels`, then
#   carry .device/wheels) and installed beside the checkout. A python whose transformers is not the one
#   pyproject.toml pins stops the recipe (exit 2) with that fix: on another version a run could fail
#   minutes into a loan (5.17 names the KV cache past_key_values, 5.24 cache).
BIN=${BIN:-.venv/bin}
if [ -x "$BIN/latent-explorer" ]; then
  PY=$BIN/python; LE=("$BIN/latent-explorer")
else
  PY=${PYTHON:-python3}; LE=("$PY" -m explorer.cli)
  if compgen -G ".device/wheels/*.whl" > /dev/null; then
    "$PY" -m pip install --quiet --no-deps --no-index --upgrade --target .device/site .device/wheels/*.whl
  fi
  export PYTHONPATH="$PWD/.device/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  "$PY" - <<'EOF' || exit 2
import sys, tomllib, transformers
from packaging.requirements import Requirement
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
pin = next(Requirement(d) for d in deps if d.startswith("transformers"))
if transformers.__version__ not in pin.specifier:
    sys.exit(f"this python has transformers {transformers.__version__}, the project needs {pin}: run "
             "`make device-wheels` on your machine and carry .device/wheels (the recipe installs it there)")
EOF
fi
