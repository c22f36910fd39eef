"""What every command line of the explorer shares: the tail of an evaluation or training command.

A leaf (errors and io only), so the top-level :mod:`explorer.cli` and each method's own
``python -m`` entry point use the same one without importing each other.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import ExplorerError
from .io import atomic_write_text


def report(run: Callable[[], tuple[dict[str, Any], dict[str, Any] | None]], *, prog: str,
           out: str | None = None) -> int:
    """The tail of every evaluation command: ``run()`` gives (summary, full result); print the
    summary as one JSON line, write the full result (per-problem outputs) to ``out`` if given (and
    there is one), and turn a typed error into a message on stderr and exit status 2."""
    try:
        summary, full = run()
    except ExplorerError as e:
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    if out and full is not None:
        atomic_write_text(Path(out), json.dumps(full, indent=1, default=str))
    return 0
