"""Corpus capture (explorer.corpus): batched capture to Parquet shards, resume, read-back, exports."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from explorer.corpus import capture_corpus, open_capture, read_corpus, write_layout_csv
from explorer.corpus import capture as capture_mod
from explorer.errors import EmptyInputError, InputError, OfflineError, SaveFileError, UnknownPointError

TEXTS = ["The cat sat on the mat.", "Paris is the capital of France, a country in Europe.", "",
         "Hi", "One two three four five six seven.", "Water boils at one hundred degrees."]
POINTS = ["layer.3", "final"]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-6))


@pytest.mark.parametrize("reduce", ["last", "mean", "all"])
def test_capture_matches_trace_of_each_text(smol, tmp_path, reduce):
    cap = smol.capture(TEXTS, points=POINTS, reduce=reduce, out=tmp_path / "c", batch_size=3, shard_docs=4,
                       progress=False)
    assert cap.manifest.complete and cap.manifest.n_shards == 2
    assert cap.manifest.stats["empty"] == 1 and cap.manifest.stats["tokens"] > 0
    frame = cap.frame(vectors=False)
    assert sorted(set(frame.doc)) == [0, 1, 3, 4, 5]          # the empty text gives no rows; numbers stay
    assert list(frame.columns) == ["doc", "text", "position", "token", "n_tokens", "point"]
    for p in POINTS:
        docs = cap.frame(points=p, vectors=False)
        vecs = cap.vectors(p)
        assert len(vecs) == len(docs)
        for j, text in enumerate(TEXTS):
            if not text:
                continue
            tr = smol.trace(text, points=POINTS)
            ref = tr[p].numpy()
            rows = docs.index[docs.doc == j].to_numpy()
            if reduce == "last":
                ref = ref[-1:]
                assert docs.loc[rows, "token"].tolist() == [tr.tokens[-1]]
            elif reduce == "mean":
                ref = ref.mean(0, keepdims=True)
                assert docs.loc[rows, "position"].tolist() == [-1]
            else:
                assert docs.loc[rows, "token"].tolist() == tr.tokens
                assert docs.loc[rows, "position"].tolist() == list(range(len(tr.tokens)))
            assert (docs.loc[rows, "text"] == text).all()
            assert _rel(vecs[rows], ref) < 1e-4, (j, p)


def test_padding_and_batch_size_do_not_change_the_vectors(smol, tmp_path):
    one = smol.capture(TEXTS, points="layer.5", batch_size=1, out=tmp_path / "one", progress=False)
    four = smol.capture(TEXTS, points="layer.5", batch_size=4, out=tmp_path / "four", progress=False)
    assert one.frame(vectors=False).equals(four.frame(vectors=False))
    assert _rel(four.vectors(), one.vectors()) < 1e-4


def test_an_interrupted_capture_resumes_and_skips_finished_shards(smol, tmp_path, monkeypatch):
    out = tmp_path / "cap"
    calls = []
    real = capture_mod.run_shard

    def flaky(model, texts, m, i, folder, batch_size, bar=None):
        calls.append(i)
        if i == 1:
            raise KeyboardInterrupt  # killed during the second shard
        return real(model, texts, m, i, folder, batch_size, bar)

    monkeypatch.setattr(capture_mod, "run_shard", flaky)
    with pytest.raises(KeyboardInterrupt):
        capture_corpus(smol, TEXTS, points=POINTS, out=out, shard_docs=2, progress=False)
    m = json.loads((out / "capture.json").read_text())
    assert list(m["shards"]) == ["shard-00000.parquet"]           # only whole shards are listed
    assert sorted(p.name for p in out.iterdir()) == ["capture.json", "shard-00000.parquet"]  # nothing half-written
    first = (out / "shard-00000.parquet").stat().st_mtime_ns
    calls.clear()
    monkeypatch.setattr(capture_mod, "run_shard", real)
    cap = capture_corpus(smol, TEXTS, points=POINTS, out=out, shard_docs=2, progress=False)
    assert cap.manifest.complete and (out / "shard-00000.parquet").stat().st_mtime_ns == first
    whole = capture_corpus(smol, TEXTS, points=POINTS, out=tmp_path / "whole", shard_docs=2, progress=False)
    assert cap.frame(vectors=False).equals(whole.frame(vectors=False))
    assert np.array_equal(cap.vectors("final"), whole.vectors("final"))


def test_other_settings_or_a_foreign_folder_are_refused(smol, tmp_path):
    out = tmp_path / "cap"
    capture_corpus(smol, TEXTS[:2], points="final", out=out, progress=False)
    with pytest.raises(InputError, match="reduce: 'last' there, 'mean' now"):
        capture_corpus(smol, TEXTS[:2], points="final", reduce="mean", out=out, progress=False)
    with pytest.raises(InputError, match="fingerprint"):
        capture_corpus(smol, TEXTS[:3], points="final", out=out, progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a capture folder"):
        capture_corpus(smol, TEXTS, out=tmp_path / "busy", progress=False)
    for bad, match in [(dict(reduce="max"), "reduce"), (dict(dtype="int8"), "dtype"), (dict(batch_size=0), "batch_size"),
                       (dict(points=["layer.99"]), "unknown capture point"), (dict(max_tokens=-1), "max_tokens")]:
        with pytest.raises((InputError, UnknownPointError), match=match):
            capture_corpus(smol, TEXTS, out=tmp_path / "x", progress=False, **bad)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
    with pytest.raises(InputError, match="causal language model"):
        capture_corpus(object(), TEXTS, out=tmp_path / "y", progress=False)


def test_the_same_call_twice_reads_the_cached_capture(smol, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_EXPLORER_CACHE", str(tmp_path))
    a = smol.capture(TEXTS[:2], points="final", progress=False)
    assert a.folder.parent == tmp_path / "captures"
    monkeypatch.setattr(capture_mod, "run_shard", lambda *a, **k: pytest.fail("captured again"))
    b = smol.capture(TEXTS[:2], points="final", progress=False)
    assert b.folder == a.folder and np.array_equal(a.vectors(), b.vectors())


@pytest.mark.parametrize("dtype,tol", [("float16", 2e-3), ("bfloat16", 1e-2)])
def test_half_precision_storage(smol, tmp_path, dtype, tol):
    full = smol.capture(TEXTS, points="layer.10", out=tmp_path / "f32", progress=False)
    half = smol.capture(TEXTS, points="layer.10", out=tmp_path / dtype, dtype=dtype, progress=False)
    assert pq.read_schema(half.shard_paths()[0]).metadata[b"dtype"] == dtype.encode()
    a, b = half.vectors(), full.vectors()
    assert a.dtype == np.float32 and _rel(a, b) < tol and not np.array_equal(a, b)
    assert half.shard_paths()[0].stat().st_size < full.shard_paths()[0].stat().st_size


def test_sources_files_and_datasets(smol, tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\nsecond line\n", encoding="utf-8")
    assert read_corpus(tmp_path / "a.txt").texts == ("first line", "second line")
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n{"text": "two", "id": 2}\n', encoding="utf-8")
    assert read_corpus(str(tmp_path / "a.jsonl")).texts == ("one", "two")
    pq.write_table(pa.table({"body": ["x y", "z"]}), tmp_path / "a.parquet")
    assert read_corpus(tmp_path / "a.parquet", text_field="body").texts == ("x y", "z")
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": ["alpha beta", "gamma"]})
    cap = smol.capture(ds, points="final", out=tmp_path / "ds", progress=False)
    assert cap.frame(vectors=False).text.tolist() == ["alpha beta", "gamma"]
    assert read_corpus(ds).fingerprint == read_corpus(["alpha beta", "gamma"]).fingerprint


def test_bad_sources_get_typed_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"\.jsonl"):
        read_corpus("hf:stanfordnlp/imdb")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(SaveFileError, match="not UTF-8"):
        read_corpus(tmp_path / "latin1.txt")
    (tmp_path / "bad.jsonl").write_text('{"text": 1}\n')
    with pytest.raises(InputError, match="text_field"):
        read_corpus(tmp_path / "bad.jsonl")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(SaveFileError, match="Parquet"):
        read_corpus(tmp_path / "broken.parquet")
    with pytest.raises(InputError, match="unknown corpus format"):
        (tmp_path / "a.csv").write_text("x")
        read_corpus(tmp_path / "a.csv")
    with pytest.raises(EmptyInputError):
        read_corpus([])
    with pytest.raises(InputError, match="not a str"):
        read_corpus(["ok", b"bytes"])
    with pytest.raises(InputError, match="not a character"):
        read_corpus(["caf\udce9"])
    with pytest.raises(InputError, match="list of texts"):
        read_corpus("just one sentence")
    with pytest.raises(SaveFileError, match="capture.json"):
        open_capture(tmp_path)


def test_exports_parquet_projector_and_layout(smol, tmp_path):
    cap = smol.capture(TEXTS, points=POINTS, reduce="all", out=tmp_path / "cap", dtype="float16", progress=False)
    pq_path = cap.to_parquet(tmp_path / "out.parquet", points="final")
    t = pq.read_table(pq_path)
    assert t.num_rows == len(cap.vectors("final")) and str(t.schema.field("vector").type.value_type) == "float"
    assert set(t.column("point").to_pylist()) == {"final"} and pa.types.is_string(t.schema.field("text").type)
    vec, meta = cap.to_projector(tmp_path / "proj", point="layer.3")
    lines = vec.read_text().splitlines()
    assert len(lines) == len(cap.vectors("layer.3")) and len(lines[0].split("\t")) == smol.d_model
    rows = meta.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "doc\tpoint\tposition\ttoken\ttext" and len(rows) == len(lines) + 1
    assert np.allclose(np.loadtxt(vec, delimiter="\t"), cap.vectors("layer.3"), atol=1e-3, rtol=1e-5)
    coords = np.arange(8, dtype=np.float32).reshape(4, 2)
    path = write_layout_csv(tmp_path / "layout.csv", coords, {"label": ["a", "b,c", "d", "e"]})
    with open(path, newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == ["x", "y", "label"] and got[2] == ["2", "3", "b,c"]
    with pytest.raises(InputError, match="3 values for 4 points"):
        write_layout_csv(tmp_path / "l2.csv", coords, {"label": ["a", "b", "c"]})
    with pytest.raises(UnknownPointError):
        cap.vectors("layer.4")
    with pytest.raises(InputError, match="pass point="):
        cap.vectors()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary files left behind


def test_capture_command_line(tmp_path, capsys):
    from explorer.cli import main

    (tmp_path / "c.txt").write_text("a red apple\na green leaf\n")
    assert main(["capture", "smollm2-135m-instruct", str(tmp_path / "c.txt"), "--out", str(tmp_path / "cap"),
                 "--points", "layer.2", "final", "--reduce", "mean", "--dtype", "float16", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "2 texts" in out and "4 rows" in out
    cap = open_capture(tmp_path / "cap")
    assert cap.points == ["layer.2", "final"] and cap.manifest.reduce == "mean" and cap.manifest.dtype == "float16"
    assert main(["capture", "smollm2-135m-instruct", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "x")]) == 2
    assert "no file" in capsys.readouterr().err


def test_nearest_rows_and_the_sample_corpus(smol, tmp_path):
    from explorer.corpus.sample import TEMPLATES, TOPICS, neighbour_agreement, topic_sentences

    df = topic_sentences()
    assert len(df) == len(TOPICS) * 8 * len(TEMPLATES) * 8 and df.text.is_unique
    small = topic_sentences(40, seed=1)
    assert len(small) == 40 and small.equals(topic_sentences(40, seed=1)) and not small.equals(topic_sentences(40))
    cap = smol.capture(small.text.tolist(), points=["layer.20"], reduce="mean", out=tmp_path / "c", progress=False)
    v = cap.vectors()
    near = cap.nearest(v[7], k=3)
    assert near.doc.iloc[0] == 7 and near.similarity.iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert list(near.similarity) == sorted(near.similarity, reverse=True) and len(near) == 3
    with pytest.raises(InputError, match="576-d"):
        cap.nearest(np.zeros(5))
    # agreement: 1.0 for labels that follow place, chance for shuffled labels
    x = np.repeat(np.eye(4, dtype=np.float32), 10, axis=0) + np.random.default_rng(0).normal(0, 0.01, (40, 4)).astype(np.float32)
    lab = np.repeat(np.arange(4), 10)
    assert neighbour_agreement(x, lab, k=5) == 1.0
    assert neighbour_agreement(x, np.random.default_rng(1).permutation(lab), k=5) < 0.5
    with pytest.raises(InputError, match="labels"):
        neighbour_agreement(x, lab[:3])


def test_join_adds_the_labels_of_each_document(smol, tmp_path):
    import pandas as pd

    labels = pd.DataFrame({"topic": ["pets", "places", "none", "greetings", "counting", "science"],
                           "text": TEXTS, "n": range(6)})
    cap = smol.capture(TEXTS, points=POINTS, reduce="all", out=tmp_path / "c", progress=False)
    t = cap.table(points="final", join=labels)
    docs = t.column("doc").to_numpy()
    assert t.column("topic").to_pylist() == labels.topic.to_numpy()[docs].tolist()
    assert t.column("n").to_pylist() == docs.tolist() and t.num_rows == len(cap.vectors("final"))
    only = cap.table(points="final", columns=["token"], join=labels)
    assert only.column_names == ["token", "topic", "text", "n"]
    assert cap.frame(points="layer.3", vectors=False, join=labels).topic.iloc[0] == "pets"
    with pytest.raises(InputError, match="one row per text"):
        cap.table(join=labels.head(3))
