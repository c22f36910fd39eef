"""PatchView: a text coloured by next-byte entropy, cut into BLT patches that move with a slider."""
from __future__ import annotations

from typing import Any

import anywidget
import numpy as np
import traitlets

from explorer.errors import InputError
from explorer.patches.entropy import ByteEntropies, byte_entropies
from explorer.patches.patching import RULES, calibrate
from explorer.patches.tokens import default_tokenizer, token_spans
from explorer.patches.trajectory import Patches, char_starts, cut, patch_trajectory
from explorer.trajectory import Trajectory

from ._base import esm, f32_bytes


class PatchView(anywidget.AnyWidget):
    """``text`` as the byte entropy model reads it: every character coloured by the entropy of its
    first byte (hover: each byte's entropy), patch boundaries drawn, an entropy line under the
    text with the threshold, and a subword tokenizer's tokens of the same text underneath. The
    threshold slider, the rule toggle (``global`` / ``monotonic``) and the maximum patch length move
    the boundaries in the browser (the rule runs there, on entropies sent once); the statistics
    (bytes per patch, patches against tokens) follow. ``threshold`` None: calibrated to ``target``
    bytes per patch on this text. ``tokenizer``: ``"default"`` (SmolLM2's BPE), any tokenizer or
    model, or None (no token row)."""

    _esm = esm("patches.js")

    threshold = traitlets.Float(1.0).tag(sync=True)
    rule = traitlets.Unicode("global").tag(sync=True)
    max_len = traitlets.Int(0).tag(sync=True)           # 0: no maximum
    _data = traitlets.Dict().tag(sync=True)
    _entropy = traitlets.Bytes(b"").tag(sync=True)
    _width = traitlets.Int(760).tag(sync=True)

    def __init__(self, model: Any, text: str, *, rule: str = "global", threshold: float | None = None,
                 target: float = 4.5, max_len: int | None = None, tokenizer: Any = "default", width: int = 760,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if rule not in RULES:
            raise InputError(f"rule must be one of {RULES}, got {rule!r}.")
        self.model = model
        self.readings: ByteEntropies = byte_entropies(model, text)
        if len(self.readings.data) == 0:
            raise InputError("the text is empty; type some text to patch.")
        tok = default_tokenizer() if isinstance(tokenizer, str) and tokenizer == "default" else tokenizer
        spans = token_spans(tok, text) if tok is not None else []
        data = self.readings.data
        starts = np.flatnonzero(char_starts(data)).tolist() + [len(data)]
        chars = [[a, b, data[a:b].decode("utf-8", errors="replace")] for a, b in zip(starts, starts[1:])]
        H = self.readings.entropy
        cal = {r: float(calibrate(H, target, r, max_len=max_len)) for r in RULES}
        with self.hold_sync():
            self._width = int(width)
            self._entropy = f32_bytes(H)
            self._data = {"chars": chars, "tokens": [list(s) for s in spans], "n_bytes": len(data),
                          "calibrated": cal, "target": target, "model": getattr(model, "name", "")}
            self.max_len = int(max_len or 0)
        self.rule = rule
        self.threshold = cal[rule] if threshold is None else float(threshold)

    @traitlets.validate("rule")
    def _check_rule(self, proposal: Any) -> str:
        if proposal["value"] not in RULES:
            raise InputError(f"rule must be one of {RULES}, got {proposal['value']!r}.")
        return proposal["value"]

    @traitlets.observe("rule")
    def _rule_changed(self, change: Any) -> None:
        """Each rule starts from its own calibrated threshold (their scales differ)."""
        cal = self._data.get("calibrated", {}) if self._data else {}
        if change["old"] != change["new"] and change["new"] in cal:
            self.threshold = cal[change["new"]]

    @traitlets.validate("max_len")
    def _check_max_len(self, proposal: Any) -> int:
        if proposal["value"] < 0:
            raise InputError(f"max_len must be >= 0 (0: no maximum), got {proposal['value']}.")
        return proposal["value"]

    def patches(self) -> Patches:
        """The patches at the current rule, threshold and maximum length (what the browser draws)."""
        return cut(self.readings, self.threshold, self.rule, max_len=self.max_len or None)

    def stats(self) -> dict[str, float]:
        """Bytes, patches, tokens, bytes per patch and per token, patches per token."""
        n, p, t = len(self.readings.data), len(self.patches().bounds), len(self._data["tokens"])
        return {"bytes": n, "patches": p, "tokens": t, "bytes_per_patch": n / p,
                "bytes_per_token": n / t if t else float("nan"), "patches_per_token": p / t if t else float("nan")}

    def calibrate(self, target: float = 4.5) -> float:
        """Set the threshold that gives ``target`` bytes per patch on this text under the current rule."""
        self.threshold = float(calibrate(self.readings.entropy, target, self.rule, max_len=self.max_len or None))
        return self.threshold

    def trajectory(self, **options: Any) -> Trajectory:
        """The current patches as a trajectory (for the stepper and the map); see
        :func:`explorer.patches.trajectory.patch_trajectory`."""
        return patch_trajectory(self.model, self.readings.text, self.threshold, self.rule,
                                max_len=self.max_len or None, **options)

    def __repr__(self) -> str:
        s = self.stats()
        return (f"PatchView({s['bytes']} bytes, {s['patches']} patches ({self.rule}, θ={self.threshold:.3g}), "
                f"{s['bytes_per_patch']:.2f} bytes/patch)")
