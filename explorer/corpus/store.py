"""The on-disk form of a corpus capture: Parquet shards and a JSON manifest, read back as Arrow.

A capture folder holds ``capture.json`` (the manifest: model, points, reduction, storage dtype, the
corpus's fingerprint, and each finished shard with its row count) and ``shard-NNNNN.parquet`` files,
one per block of documents. Each row is one vector::

    doc int64 · text string · position int32 · token string · n_tokens int32 · point string · vector fixed_size_list<d>

``position`` is the token's index (``reduce="last"``: the last token; ``"all"``: every token;
``"mean"``: -1, the mean over the text's tokens, whose ``token`` is empty).

Why Parquet for the vectors too (not safetensors shards with an Arrow index): one self-describing
file per shard that pyarrow, pandas, DuckDB, Polars, Embedding Atlas and Spark read as they are;
``fixed_size_list`` columns come back as one contiguous (n, d) numpy array without a copy; repeated
texts and point names are dictionary-encoded, so ``reduce="all"`` does not store a text once per
token. float32 and float16 are Arrow types; bfloat16 is stored as its 16 raw bits (uint16) with
``dtype: bfloat16`` in the schema's metadata, and read back as float32.

Every shard and the manifest are written atomically (:func:`explorer.io.atomic_path`): an
interrupted capture leaves only whole shards, and the manifest lists only those.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import DependencyError, InputError, SaveFileError, UnknownPointError
from ..io import atomic_path, atomic_write_text

FORMAT = "latent-explorer.corpus-capture/1"
MANIFEST = "capture.json"
STORE_DTYPES = ("float32", "float16", "bfloat16")
COLUMNS = ("doc", "text", "position", "token", "n_tokens", "point", "vector")


def _pa() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency
        raise DependencyError("corpus captures need pyarrow: pip install pyarrow") from None
    return pa


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.parquet"


def vector_array(vectors: np.ndarray, dtype: str) -> Any:
    """An Arrow ``fixed_size_list`` column of the rows of ``vectors`` (n, d) float32, stored as ``dtype``."""
    pa = _pa()
    n, d = vectors.shape
    if dtype == "bfloat16":  # the top 16 bits of float32, rounded to nearest even
        u = np.ascontiguousarray(vectors, np.float32).view(np.uint32)
        flat = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16).reshape(-1)
    else:
        flat = np.ascontiguousarray(vectors, np.float16 if dtype == "float16" else np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat), d)


def write_shard(path: Path, rows: dict[str, Any], vectors: np.ndarray, dtype: str) -> int:
    """Write one shard atomically; ``rows`` holds the scalar columns (equal lengths). Returns the row count."""
    pa = _pa()
    import pyarrow.parquet as pq

    n = len(vectors)
    table = pa.table({
        "doc": pa.array(rows["doc"], pa.int64()),
        "text": pa.array(rows["text"], pa.string()).dictionary_encode(),
        "position": pa.array(rows["position"], pa.int32()),
        "token": pa.array(rows["token"], pa.string()),
        "n_tokens": pa.array(rows["n_tokens"], pa.int32()),
        "point": pa.array(rows["point"], pa.string()).dictionary_encode(),
        "vector": vector_array(vectors.reshape(n, -1) if n else vectors, dtype),
    }).replace_schema_metadata({"format": FORMAT, "dtype": dtype})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd" if dtype == "float32" else "snappy")
    return n


def as_vectors(column: Any, dtype: str) -> np.ndarray:
    """(n, d) float32 numpy array from a ``vector`` column (chunked or not) of a shard."""
    pa = _pa()
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    d = column.type.list_size
    flat = column.flatten().to_numpy(zero_copy_only=False)
    if dtype == "bfloat16":
        flat = (flat.astype(np.uint32) << 16).view(np.float32)
    return np.asarray(flat, np.float32).reshape(-1, d)


@dataclass
class Manifest:
    """What a capture folder holds (``capture.json``)."""

    model: str
    points: list[str]
    reduce: str
    dtype: str
    max_tokens: int
    shard_docs: int
    n_docs: int
    fingerprint: str
    origin: str
    d_model: int
    shards: dict[str, int]
    stats: dict[str, Any]

    def settings(self) -> dict[str, Any]:
        """What must match for a re-run to resume this capture."""
        return {"model": self.model, "points": self.points, "reduce": self.reduce, "dtype": self.dtype,
                "max_tokens": self.max_tokens, "shard_docs": self.shard_docs, "n_docs": self.n_docs,
                "fingerprint": self.fingerprint}

    @property
    def n_shards(self) -> int:
        return -(-self.n_docs // self.shard_docs)

    @property
    def complete(self) -> bool:
        return len(self.shards) == self.n_shards

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, **self.__dict__}, indent=1)

    def save(self, folder: Path) -> None:
        atomic_write_text(folder / MANIFEST, self.to_json())

    @classmethod
    def load(cls, folder: Path) -> "Manifest":
        path = folder / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SaveFileError(f"{folder} holds no {MANIFEST}: it is not a corpus capture (or the capture never "
                                "finished a shard); run the capture again with out= this folder.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise SaveFileError(f"cannot read {path} ({e}); delete the folder and capture again.") from None
        fields = set(cls.__dataclass_fields__)
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or not fields <= set(raw):
            raise SaveFileError(f"{path} is not a {FORMAT} manifest; delete the folder and capture again.")
        return cls(**{k: raw[k] for k in fields})


class CorpusCapture:
    """A finished (or partly finished) capture folder, read lazily as Arrow.

    ``table()`` is the whole capture (or some points / columns) as a ``pyarrow.Table``; ``frame()`` the
    same as a pandas DataFrame (vectors as one numpy row each); ``vectors(point)`` the (n, d) float32
    matrix of one point, in row order of ``table(points=[point])`` — what :class:`widgets.LatentMap`
    and :class:`widgets.CorpusMap` take."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.manifest = Manifest.load(self.folder)

    def __repr__(self) -> str:
        m = self.manifest
        return (f"CorpusCapture({str(self.folder)!r}, model={m.model!r}, docs={m.n_docs:,}, rows={len(self):,}, "
                f"points={m.points}, reduce={m.reduce!r}, dtype={m.dtype}"
                f"{'' if m.complete else f', {len(m.shards)}/{m.n_shards} shards'})")

    def __len__(self) -> int:
        return sum(self.manifest.shards.values())

    @property
    def points(self) -> list[str]:
        return list(self.manifest.points)

    def shard_paths(self) -> list[Path]:
        return [self.folder / name for name in sorted(self.manifest.shards)]

    def _check_points(self, points: Sequence[str] | str | None) -> list[str] | None:
        if points is None:
            return None
        points = [points] if isinstance(points, str) else list(points)
        bad = [p for p in points if p not in self.manifest.points]
        if bad:
            raise UnknownPointError(f"this capture holds {self.manifest.points}, not {bad}; capture those points, "
                                    "or pick from the ones it holds.")
        return points

    def table(self, points: Sequence[str] | str | None = None, columns: Sequence[str] | None = None,
              join: Any = None) -> Any:
        """The rows as one ``pyarrow.Table`` (``points``: only those; ``columns``: only those). ``join``: a
        DataFrame with one row per document of the source, in source order (e.g. the labels the texts came
        with); its other columns are added to every row of their document."""
        if join is None:
            return self._table(points, columns)
        extra = columns is not None and "doc" not in columns
        t = self._join(self._table(points, [*columns, "doc"] if extra else columns), join)
        return t.drop_columns(["doc"]) if extra else t

    def _join(self, t: Any, join: Any) -> Any:
        pa = _pa()
        if not hasattr(join, "columns") or len(join) != self.manifest.n_docs:
            raise InputError(f"join must be a DataFrame with one row per text of the corpus ({self.manifest.n_docs:,}), "
                             f"got {type(join).__name__} of {len(join) if hasattr(join, '__len__') else '?'} rows.")
        docs = t.column("doc").to_numpy()
        for c in join.columns:
            if str(c) not in t.column_names:
                t = t.append_column(str(c), pa.array(join[c].to_numpy()[docs]))
        return t

    def _table(self, points: Sequence[str] | str | None = None, columns: Sequence[str] | None = None) -> Any:
        pa = _pa()
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        points = self._check_points(points)
        cols = list(columns) if columns is not None else list(COLUMNS)
        bad = [c for c in cols if c not in COLUMNS]
        if bad:
            raise InputError(f"unknown column(s) {bad}; a capture has {list(COLUMNS)}.")
        read_cols = cols if points is None or "point" in cols else [*cols, "point"]
        parts = []
        for path in self.shard_paths():
            try:
                t = pq.read_table(path, columns=read_cols)
            except Exception as e:
                raise SaveFileError(f"cannot read {path} ({e}); delete it and run the capture again to redo it.") from None
            if points is not None:
                t = t.filter(pc.is_in(t.column("point").cast(pa.string()), value_set=pa.array(points)))
            parts.append(t.select(cols))
        if not parts:
            return pa.table({c: [] for c in cols})
        return pa.concat_tables(parts, promote_options="permissive").combine_chunks() if len(parts) > 1 else parts[0]

    def vectors(self, point: str | None = None) -> np.ndarray:
        """(n, d) float32: the vectors of one capture point (needed when the capture holds several)."""
        if point is None:
            if len(self.manifest.points) != 1:
                raise InputError(f"this capture holds {len(self.manifest.points)} points; pass point= one of "
                                 f"{self.manifest.points}.")
            point = self.manifest.points[0]
        t = self._table(points=[point], columns=["vector"])
        if t.num_rows == 0:
            return np.zeros((0, self.manifest.d_model), np.float32)
        return as_vectors(t.column("vector"), self.manifest.dtype)

    def frame(self, points: Sequence[str] | str | None = None, *, vectors: bool = True, join: Any = None) -> Any:
        """A pandas DataFrame of the rows (``vectors=False`` leaves the vector column out; ``join`` as in
        :meth:`table`)."""
        cols = [c for c in COLUMNS if vectors or c != "vector"]
        t = self.table(points, cols, join=join)
        df = t.drop_columns(["vector"]).to_pandas() if "vector" in cols else t.to_pandas()
        if "vector" in cols:
            v = as_vectors(t.column("vector"), self.manifest.dtype) if t.num_rows else np.zeros((0, self.manifest.d_model), np.float32)
            df["vector"] = list(v)
        for c in ("text", "point"):
            if c in df and hasattr(df[c], "cat"):
                df[c] = df[c].astype(str)
        return df

    def iter_batches(self, points: Sequence[str] | str | None = None) -> Iterator[tuple[Any, np.ndarray]]:
        """(metadata table, vectors (n, d) float32) per shard: the whole capture without holding it in memory."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        pa = _pa()
        points = self._check_points(points)
        for path in self.shard_paths():
            t = pq.read_table(path)
            if points is not None:
                t = t.filter(pc.is_in(t.column("point").cast(pa.string()), value_set=pa.array(points)))
            yield t.drop_columns(["vector"]), as_vectors(t.column("vector"), self.manifest.dtype)

    def nearest(self, vector: Any, point: str | None = None, k: int = 10) -> Any:
        """The ``k`` rows of one point whose vectors are closest to ``vector`` by cosine similarity, best first,
        as a DataFrame with a ``similarity`` column (streamed shard by shard: the capture may be larger
        than memory). ``vector``: (d,) numpy or torch, e.g. a trace's state or a continuous thought."""
        from ..projection import as_matrix
        from ..validate import whole

        q = as_matrix(vector, "vector")
        if q.shape != (1, self.manifest.d_model):
            raise InputError(f"vector must be one {self.manifest.d_model}-d vector (this capture's width), "
                             f"got shape {tuple(q.shape)}.")
        k = whole(k, "k", lo=1)
        if point is None:
            if len(self.manifest.points) != 1:
                raise InputError(f"this capture holds {len(self.manifest.points)} points; pass point= one of "
                                 f"{self.manifest.points}.")
            point = self.manifest.points[0]
        q = q[0] / max(float(np.linalg.norm(q)), 1e-12)
        best_meta, best_sim = [], []
        for meta, vecs in self.iter_batches([point]):
            if not len(vecs):
                continue
            sim = vecs @ q / np.maximum(np.linalg.norm(vecs, axis=1), 1e-12)
            top = np.argsort(-sim)[:k]
            best_meta.append(meta.take(top).to_pandas())
            best_sim.append(sim[top])
        if not best_meta:
            raise InputError(f"the capture holds no rows at {point!r}.")
        import pandas as pd

        df = pd.concat(best_meta, ignore_index=True)
        df["similarity"] = np.concatenate(best_sim)
        df = df.sort_values("similarity", ascending=False, kind="stable").head(k).reset_index(drop=True)
        for c in ("text", "point"):
            df[c] = df[c].astype(str)
        return df

    # -- exports ------------------------------------------------------------------------------
    def to_parquet(self, path: str | Path, points: Sequence[str] | str | None = None) -> Path:
        """The capture (or some points) as one Parquet file, vectors as float32 lists: what Embedding Atlas,
        DuckDB or pandas open directly."""
        import pyarrow.parquet as pq

        pa = _pa()
        path = Path(path)
        writer = None
        with atomic_path(path) as tmp:
            try:
                for meta, vecs in self.iter_batches(points):
                    t = meta.append_column("vector", vector_array(vecs, "float32")) if len(vecs) else None
                    if t is None:
                        continue
                    t = t.cast(pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                                          for f in t.schema]))
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, t.schema, compression="zstd")
                    writer.write_table(t)
                if writer is None:
                    raise InputError("nothing to export: the capture holds no rows for those points.")
            finally:
                if writer is not None:
                    writer.close()
        return path

    def to_projector(self, folder: str | Path, point: str | None = None,
                     metadata: Sequence[str] = ("doc", "point", "position", "token", "text")) -> tuple[Path, Path]:
        """The TensorFlow Embedding Projector's pair: ``vectors.tsv`` (one vector per line, tab-separated)
        and ``metadata.tsv`` (a header, then one row per vector). Load both at projector.tensorflow.org."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        cols = list(metadata)
        bad = [c for c in cols if c not in COLUMNS or c == "vector"]
        if bad:
            raise InputError(f"unknown metadata column(s) {bad}; choose from {[c for c in COLUMNS if c != 'vector']}.")
        points = None if point is None else [point]
        vec_path, meta_path = folder / "vectors.tsv", folder / "metadata.tsv"
        with atomic_path(vec_path) as vtmp, atomic_path(meta_path) as mtmp:
            with open(vtmp, "w", encoding="utf-8") as vf, open(mtmp, "w", encoding="utf-8") as mf:
                mf.write("\t".join(cols) + "\n")
                for meta, vecs in self.iter_batches(points):
                    np.savetxt(vf, vecs, fmt="%.6g", delimiter="\t")
                    columns = [meta.column(c).to_pylist() for c in cols]
                    for row in zip(*columns):
                        mf.write("\t".join(_tsv_cell(v) for v in row) + "\n")
        return vec_path, meta_path


def _tsv_cell(v: Any) -> str:
    return " ".join(str(v).split()) if v is not None else ""


def write_layout_csv(path: str | Path, coords: np.ndarray, columns: dict[str, Sequence[Any]] | None = None) -> Path:
    """A map's layout as CSV: ``x,y`` plus any metadata columns (equal lengths), written atomically."""
    import csv

    coords = np.asarray(coords, np.float32)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise InputError(f"coords must be an (n, 2) array, got shape {coords.shape}.")
    columns = dict(columns or {})
    for name, col in columns.items():
        if len(col) != len(coords):
            raise InputError(f"column {name!r} has {len(col)} values for {len(coords)} points.")
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["x", "y", *columns])
        cols = list(columns.values())
        for i, (x, y) in enumerate(coords.tolist()):
            w.writerow([f"{x:.6g}", f"{y:.6g}", *(c[i] for c in cols)])
    return path


def open_capture(folder: str | Path) -> CorpusCapture:
    """Open a capture folder written by :func:`explorer.corpus.capture_corpus`."""
    return CorpusCapture(folder)


__all__ = ["CorpusCapture", "Manifest", "open_capture", "write_layout_csv", "FORMAT", "STORE_DTYPES", "COLUMNS"]
