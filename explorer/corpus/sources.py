"""Where a corpus comes from: a list of strings, a local ``.txt`` / ``.jsonl`` / ``.parquet`` file, or a
Hugging Face ``datasets`` dataset (an object, or ``"hf:NAME[:SPLIT]"`` when online).

Every source becomes a :class:`Corpus`: the texts in order (a document's number is its index in the
source, so captured rows join back to it) and a fingerprint of their content, which a resumed
capture checks so that shards of another corpus are never mixed in.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import DependencyError, EmptyInputError, InputError, OfflineError, SaveFileError
from ..protocol import check_text

SUFFIXES = (".txt", ".jsonl", ".parquet")
LOCAL_ALTERNATIVES = ("a list of strings, a .txt file (one text per line), a .jsonl file (one JSON object per line "
                      "with a 'text' field) or a .parquet file with a 'text' column")


@dataclass(frozen=True)
class Corpus:
    """The texts of a corpus, in source order, and where they came from."""

    texts: tuple[str, ...]
    origin: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def fingerprint(self) -> str:
        """A hash of every text (hex, 32 chars): the same texts in the same order, the same fingerprint."""
        h = hashlib.blake2b(digest_size=16)
        for t in self.texts:
            b = t.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
        return h.hexdigest()


def read_corpus(source: Any, *, text_field: str = "text") -> Corpus:
    """A :class:`Corpus` from any supported source (see the module's docstring).

    In a ``.txt`` file every non-blank line is a text; ``text_field`` names the field of a ``.jsonl``
    object, a ``.parquet`` column or a dataset's column. Empty texts are kept (they give no rows), so a
    document's number stays its index in the source."""
    if isinstance(source, Corpus):
        return source
    if isinstance(source, (str, os.PathLike)) and str(source).startswith("hf:"):
        return _from_hub(str(source)[3:], text_field)
    if isinstance(source, (str, os.PathLike)) and (isinstance(source, os.PathLike) or _looks_like_path(source)):
        return _from_file(Path(source), text_field)
    if isinstance(source, str):
        raise InputError(f"{source[:60]!r} is neither a file nor 'hf:NAME'; pass a list of texts ([text]) to capture "
                         f"one text, or {LOCAL_ALTERNATIVES}.")
    if hasattr(source, "column_names") and hasattr(source, "__getitem__"):  # a datasets.Dataset
        return _from_dataset(source, text_field, origin=f"dataset {getattr(source, 'info', None) and source.info.dataset_name or ''}".strip())
    if isinstance(source, Sequence) or hasattr(source, "__iter__"):
        texts = list(source)
        return Corpus(_checked(texts, "the corpus"), origin=f"{len(texts)} texts given in Python")
    raise InputError(f"cannot read a corpus from {type(source).__name__}; pass {LOCAL_ALTERNATIVES}, "
                     "or a Hugging Face datasets Dataset.")


def _looks_like_path(s: str) -> bool:
    return "\n" not in s and (s.endswith(SUFFIXES) or os.sep in s or Path(s).exists())


def _checked(texts: Sequence[Any], where: str) -> tuple[str, ...]:
    if not texts:
        raise EmptyInputError(f"{where} holds no texts; pass at least one.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise InputError(f"text {i} of {where} is a {type(t).__name__}, not a str; pass strings (decode bytes first).")
        check_text(t, f"text {i} of {where}")
    return tuple(texts)


def _from_file(path: Path, field: str) -> Corpus:
    if not path.is_file():
        raise InputError(f"no file {str(path)!r}; pass an existing {', '.join(SUFFIXES)} file or a list of texts.")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path.name}: unknown corpus format {suffix!r}; use {LOCAL_ALTERNATIVES}.")
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(path, columns=[field])
            except KeyError:
                raise InputError(f"{path.name} has no column {field!r}; pass text_field= naming the text column.") from None
            texts = [t if t is not None else "" for t in table.column(field).to_pylist()]
        else:
            raw = path.read_text(encoding="utf-8")
            if suffix == ".txt":
                texts = [line for line in raw.splitlines() if line.strip()]
            else:
                texts = []
                for n, line in enumerate(raw.splitlines(), 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except (json.JSONDecodeError, RecursionError) as e:
                        raise SaveFileError(f"{path.name} line {n} is not JSON ({e}); one JSON object per line.") from None
                    if not isinstance(obj, dict) or not isinstance(obj.get(field), str):
                        raise InputError(f"{path.name} line {n} has no string field {field!r}; pass text_field= naming it.")
                    texts.append(obj[field])
    except UnicodeDecodeError as e:
        raise SaveFileError(f"{path.name} is not UTF-8 text ({e.reason} at byte {e.start}); convert it to UTF-8.") from None
    except OSError as e:
        raise SaveFileError(f"cannot read {path}: {e}") from None
    except Exception as e:  # pyarrow's own errors on a file that is not Parquet
        if type(e).__module__.startswith("pyarrow"):
            raise SaveFileError(f"{path.name} is not a readable Parquet file ({e}).") from None
        raise
    return Corpus(_checked(texts, path.name), origin=str(path))


def _from_dataset(ds: Any, field: str, origin: str) -> Corpus:
    if field not in ds.column_names:
        raise InputError(f"the dataset has no column {field!r} (it has {list(ds.column_names)}); pass text_field=.")
    texts = [t if t is not None else "" for t in ds[field]]
    return Corpus(_checked(texts, "the dataset"), origin=origin or "a datasets.Dataset")


def _from_hub(spec: str, field: str) -> Corpus:
    name, _, split = spec.partition(":")
    try:
        import datasets
    except ImportError:
        raise DependencyError(f"'hf:{spec}' needs the datasets package (pip install datasets); or pass "
                              f"{LOCAL_ALTERNATIVES}.") from None
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise OfflineError(f"'hf:{spec}' needs the Hugging Face Hub, and this session is offline (HF_HUB_OFFLINE=1); "
                           f"pass {LOCAL_ALTERNATIVES}.")
    try:
        ds = datasets.load_dataset(name, split=split or "train")
    except Exception as e:  # network, unknown name, bad split: one typed error naming the alternatives
        raise OfflineError(f"could not load the dataset 'hf:{spec}' ({type(e).__name__}: {e}); check the name and "
                           f"split, or pass {LOCAL_ALTERNATIVES}.") from None
    return _from_dataset(ds, field, origin=f"hf:{spec}")


__all__ = ["Corpus", "read_corpus", "SUFFIXES"]
