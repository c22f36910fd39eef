"""Maps of whole corpora: capture the hidden states of many texts to disk, read them back as Arrow.

- :func:`capture_corpus` (also ``Model.capture``): batched, chosen points only, reduced per text,
  streamed to Parquet shards, resumable, with a progress bar.
- :class:`CorpusCapture` / :func:`open_capture`: a capture folder as a ``pyarrow.Table``, a pandas
  DataFrame or (n, d) matrices per point; exports to one Parquet file and to the TensorFlow
  projector's TSV pair.
- :func:`explorer.corpus.distributed.capture_ray`: the same capture as a Ray Data pipeline over
  model replicas (``pip install latent-explorer[scale]``).
"""
from .capture import REDUCE, capture_corpus
from .sources import Corpus, read_corpus
from .store import COLUMNS, CorpusCapture, open_capture, write_layout_csv

__all__ = ["capture_corpus", "CorpusCapture", "open_capture", "read_corpus", "Corpus", "write_layout_csv",
           "REDUCE", "COLUMNS"]
