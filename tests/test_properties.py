"""Property-based: whatever a careless or hostile caller passes to the public API, only a typed
:class:`~explorer.errors.ExplorerError` escapes, nothing hangs, and nothing is silently accepted.

Hypothesis draws the inputs (a fixed seed, so CI sees the same ~1,300 cases each run) against a tiny
random-weight Llama with SmolLM2's real tokenizer and chat template (64 positions), and against the
pure functions (expressions, ProsQA sentences and edits, patching rules, loaders). The number of
cases tried per entry point is printed at the end of the module.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.errors import ExplorerError

CASES: Counter[str] = Counter()
SETTINGS = settings(max_examples=120, deadline=2000, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

texts = st.one_of(st.text(max_size=40), st.just(""), st.just("caf\udce9"), st.just("   "), st.just("Hi"))
junk = st.one_of(st.none(), st.integers(-10**9, 10**9), st.floats(allow_nan=True), st.binary(max_size=8),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.lists(st.integers(-5, 10**6), max_size=5))
messages = st.lists(st.dictionaries(st.sampled_from(["role", "content", "x"]),
                                    st.one_of(st.text(max_size=10), st.integers(), st.none()), max_size=3), max_size=3)


@pytest.fixture(scope="module")
def tiny(smol):
    from transformers import LlamaConfig, LlamaForCausalLM

    from explorer.model import Model

    torch.manual_seed(0)
    hf = LlamaForCausalLM(LlamaConfig(vocab_size=len(smol.tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64)).eval()
    m = Model(hf, smol.tokenizer, name="tiny")
    m.max_length = 64
    yield m
    print("\nproperty cases per entry point:", dict(sorted(CASES.items())), "total", sum(CASES.values()))


def typed_only(name, fn, *args, **kw):
    """Call ``fn``; a non-ExplorerError exception fails the test (it is re-raised)."""
    CASES[name] += 1
    try:
        return fn(*args, **kw)
    except ExplorerError:
        return None


@SETTINGS
@given(text=st.one_of(texts, junk, messages), points=st.one_of(st.none(), st.just([]), st.lists(
    st.sampled_from(["embed", "layer.0", "layer.1", "final", "layer.9", ""]), max_size=3)),
    dtype=st.sampled_from(["float32", "float16", "bfloat16", "auto", "int8", torch.int8, torch.float64, "x"]))
def test_trace(tiny, text, points, dtype):
    tr = typed_only("trace", tiny.trace, text, points=points, dtype=dtype)
    if tr is not None:
        assert all(tr[p].dtype.is_floating_point and torch.isfinite(tr[p].float()).all() for p in tr.points)
        assert max(tr.token_ids) < len(tiny.tokenizer) and len(tr) >= 1


@SETTINGS
@given(k=st.one_of(st.integers(-3, 70_000), st.floats(allow_nan=True), st.booleans(), st.none()),
       target=st.one_of(st.none(), texts))
def test_logit_lens(tiny, k, target):
    tr = tiny.trace("Hello there", points=["layer.0", "final"])
    lens = typed_only("logit_lens", tiny.logit_lens, tr, k, target=target)
    if lens is not None:
        assert lens.top_probs.shape[-1] == k and np.isfinite(lens.top_probs).all()


@SETTINGS
@given(vec=st.one_of(junk, st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=32, max_size=32),
                     st.just("flip")),
       k=st.one_of(st.integers(-2, 60_000), st.floats(allow_nan=True), st.booleans()),
       space=st.sampled_from(["output", "input", "bank", ""]))
def test_nearest_tokens(tiny, vec, k, space):
    if isinstance(vec, str):
        vec = np.flip(np.arange(32, dtype=np.float32))
    t = typed_only("nearest_tokens", tiny.nearest_tokens, vec, k, space)
    if t is not None:
        assert 1 <= len(t) <= k and all(math.isfinite(s) for s in t.scores)


@SETTINGS
@given(text=st.one_of(texts, junk), reduce=st.sampled_from([None, "mean", "max", "", 3]))
def test_token_vector(tiny, text, reduce):
    v = typed_only("token_vector", tiny.token_vector, text, reduce=reduce)
    if v is not None:
        assert reduce in (None, "mean") and v.shape == (32,)


@settings(SETTINGS, max_examples=60)
@given(n=st.one_of(st.integers(-2, 10**6), st.floats(allow_nan=True), st.booleans()),
       mode=st.sampled_from(["coconut", "soft", "cot", "beam"]),
       temperature=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(1.0)),
       top_p=st.one_of(st.none(), st.floats(-1, 2)))
def test_think(tiny, n, mode, temperature, top_p):
    from explorer.thoughts.engine import think

    if isinstance(n, int) and not isinstance(n, bool) and n > 60:
        n = 10**6                                        # beyond the context: must fail at once, not run
    r = typed_only("think", think, tiny, "Is a whale a fish?", n, mode, temperature=temperature, top_p=top_p,
                   max_new_tokens=2, annotate=False)
    if not math.isfinite(temperature) or mode == "beam":
        assert r is None
    if r is not None:
        assert all(np.isfinite(s.vectors[s.name]).all() for s in r.trajectory.steps)


@SETTINGS
@given(expr=st.one_of(st.text(alphabet=' +-−*."\'0123456789abk', max_size=60), junk))
def test_parse_expression(expr):
    from explorer.arithmetic import parse_expression

    terms = typed_only("parse_expression", parse_expression, expr)
    if terms is not None:
        assert terms and all(t.text.strip() for t in terms)


@SETTINGS
@given(text=st.one_of(st.text(alphabet="TomcatIsaorbird. ?Every", max_size=80), junk, st.just(
    "Tom is a cat. Every cat is a dog. Every dog is a cat. Is Tom a dog or fish?")))
def test_prosqa_sentences(text):
    from explorer.tasks.prosqa.graph_tokens import encode, from_sentences

    p = typed_only("from_sentences", from_sentences, text)
    if p is not None:
        assert encode(p).question and p["idx_to_symbol"][p["target"]] != p["idx_to_symbol"][p["neg_target"]]


SMALL = ("Tom is a cat. Tom is a bird. Every cat is a mammal. Every bird is a fish. Every mammal is a animal. "
         "Every reptile is a plant. Is Tom a animal or plant?")
names = st.sampled_from(["Tom", "cat", "bird", "mammal", "fish", "animal", "reptile", "plant", "dog", ""])


@SETTINGS
@given(add=st.lists(st.tuples(names, names), max_size=2), remove=st.lists(st.tuples(names, names), max_size=2),
       swap=st.booleans(), options=st.one_of(st.none(), st.tuples(names, names), junk))
def test_prosqa_edits(add, remove, swap, options):
    from explorer.tasks.prosqa.edit import edit
    from explorer.tasks.prosqa.graph import cycle
    from explorer.tasks.prosqa.graph_tokens import from_sentences

    q = typed_only("prosqa_edit", edit, from_sentences(SMALL), add=add, remove=remove, swap_options=swap,
                   options=options)
    if q is not None:
        assert cycle(len(q["idx_to_symbol"]), q["edges"]) is None


@SETTINGS
@given(H=st.lists(st.floats(-5, 20), max_size=50), th=st.floats(allow_nan=True, allow_infinity=True),
       rule=st.sampled_from(["global", "monotonic", "local"]), max_len=st.one_of(st.none(), st.integers(-1, 6)),
       target=st.floats(-1, 20))
def test_patching(H, th, rule, max_len, target):
    from explorer.patches.patching import calibrate, lengths_of, starts

    m = typed_only("patching.starts", starts, H, th, rule, max_len=max_len)
    if not math.isfinite(th) or rule == "local" or (max_len is not None and max_len < 1):
        assert m is None                                   # never accepted silently
    if m is not None and len(H):
        assert m[0] and lengths_of(m).sum() == len(H) and (max_len is None or lengths_of(m).max() <= max_len)
    if H:
        typed_only("patching.calibrate", calibrate, H, target, rule, max_len=max_len)


@settings(SETTINGS, max_examples=80)
@given(blob=st.binary(max_size=64), header=st.one_of(st.just(None), st.text(max_size=30), st.just('{"format": 1}'),
                                                    st.just("[]"), st.just('"x"')))
def test_loaders_refuse_bad_files(tmp_path_factory, blob, header):
    import json

    from safetensors.numpy import save_file

    from explorer.trace import Trace
    from explorer.trajectory import Trajectory

    d = tmp_path_factory.mktemp("f")
    raw = d / "raw.safetensors"
    raw.write_bytes(blob)
    meta = d / "meta.safetensors"
    save_file({"token_ids": np.zeros(1, np.int64)}, str(meta), metadata={"latent_explorer": header} if header else None)
    for f in (raw, meta):
        assert typed_only("Trajectory.load", Trajectory.load, f) is None
        assert typed_only("Trace.load", Trace.load, f) is None
    json.dumps(dict(CASES))


@settings(SETTINGS, max_examples=100)
@given(blob=st.one_of(st.binary(max_size=80), st.text(max_size=80).map(str.encode)),
       suffix=st.sampled_from([".txt", ".jsonl", ".parquet", ".csv", ""]), field=st.sampled_from(["text", "body", ""]))
def test_corpus_sources_refuse_bad_files(tmp_path_factory, blob, suffix, field):
    from explorer.corpus import read_corpus

    path = tmp_path_factory.mktemp("c") / f"corpus{suffix}"
    path.write_bytes(blob)
    typed_only("read_corpus", read_corpus, path, text_field=field)


@settings(SETTINGS, max_examples=80)
@given(manifest=st.one_of(st.binary(max_size=40).map(lambda b: b.decode("latin-1")), st.just("[]"), st.just("{}"),
                          st.dictionaries(st.sampled_from(["format", "model", "points", "shards", "n_docs", "dtype"]),
                                          st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=6).map(
                              lambda d: __import__("json").dumps(d))),
       shard=st.binary(max_size=40))
def test_capture_folders_refuse_bad_files(tmp_path_factory, manifest, shard):
    from explorer.corpus import open_capture

    d = tmp_path_factory.mktemp("cap")
    (d / "capture.json").write_text(manifest, encoding="latin-1")
    (d / "shard-00000.parquet").write_bytes(shard)
    cap = typed_only("open_capture", open_capture, d)
    if cap is not None:
        typed_only("CorpusCapture.table", cap.table)


@pytest.fixture(scope="module")
def cli_imported():
    """The first call imports torch, transformers and the loaders (seconds): not part of any case's time."""
    from explorer.cli import main

    main(["trace", "Hi", "--model", "nope"])


@settings(SETTINGS, max_examples=60, deadline=5000)
@given(argv=st.one_of(
    st.tuples(st.just("trace"), texts, st.just("--model"), st.sampled_from(["nope", "", "../x", "org/na me", "caf\udce9"])),
    st.tuples(st.just("capture"), st.sampled_from(["nope", "x/y/z", ""]), st.sampled_from(["missing.txt", "", "a.csv"]),
              st.just("--out"), st.sampled_from(["o1", ""]), st.sampled_from(["--reduce", "--dtype", "--batch-size", "--points"]),
              st.sampled_from(["max", "-1", "0", "nan", "layer.99", "float16"])),
    st.tuples(st.just("prosqa"), st.just("audit"), st.sampled_from(["missing.json", "bad.json", "--bad"])),
    st.lists(st.sampled_from(["capture", "--out", "x", "--ray", "--workers", "-3", "models-x", "prosqa"]), max_size=4)))
def test_command_line_fails_with_a_message_and_a_code(tmp_path_factory, cli_imported, argv):
    import os

    from explorer.cli import main

    d = tmp_path_factory.mktemp("cli")
    (d / "bad.json").write_bytes(b"\xff{")
    cwd = os.getcwd()
    os.chdir(d)
    CASES["cli"] += 1
    try:
        code = main(list(argv))
        assert isinstance(code, int)
    except SystemExit as e:  # argparse's usage errors
        assert e.code == 2
    finally:
        os.chdir(cwd)
