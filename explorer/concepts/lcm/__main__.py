"""``python -m explorer.concepts.lcm train [...]`` (:func:`explorer.concepts.lcm.train.main`) or
``... eval [--data FILE] [--json] [--limit N]``, which is ``latent-explorer prosqa eval --engine lcm``.

An entry point only (nothing imports it), so it may call the top-level command line."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["eval"]:
        from ...cli import prosqa_eval

        return prosqa_eval(["--engine", "lcm", *argv[1:]], prog="python -m explorer.concepts.lcm eval")
    from .train import main as train_main

    return train_main(argv)


if __name__ == "__main__":
    sys.exit(main())
