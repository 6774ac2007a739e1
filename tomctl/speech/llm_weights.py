"""The LLM's weights in a type llama.cpp's CPU kernels evaluate prompts fast in.

llama.cpp evaluates a prompt (a batch of tokens) with matrix-matrix kernels for Q8_0 and
Q4_0 weights, and token by token for Q4_1, the bundled SmolLM2's type. On this project's
2-core machine the 22 tokens of a caller's question took 170-230 ms to evaluate from Q4_1
and 105-110 ms from the same weights stored as Q8_0 (generating a token: 16.8 and 15.8 ms),
and every history evaluated ahead of a turn gains alike. Q8_0 keeps each Q4_1 weight to
within 1/254 of its block's largest: over 12 shop questions and their answers (1481
positions) the next-token distributions differed by a mean KL divergence of 0.007 (the
largest 0.05) and agreed on the likeliest token at 95.5 % of them; Q4_0, faster still,
differed by 0.36 and agreed at 69 %. So a Q4_1 model is converted once, for the CPU only,
into TOM_CACHE_DIR and loaded from there; where the copy cannot be written (a full disk, a
read-only directory), the model loads as it is.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
from pathlib import Path

from tomctl.logs import event

log = logging.getLogger(__name__)

# llama.cpp's enum llama_ftype (general.file_type in a GGUF file)
FTYPE_Q4_1 = 3
FTYPE_Q8_0 = 7
_CONVERT = {FTYPE_Q4_1: (FTYPE_Q8_0, "q8_0")}


def target_type(file_type: int | None, on_gpu: bool) -> tuple[int, str] | None:
    """The type to convert weights of ``file_type`` to, or None to load them as they are
    (pure)."""
    if on_gpu or file_type is None:
        return None
    return _CONVERT.get(file_type)


def converted_path(source: Path, cache_dir: Path, suffix: str) -> Path:
    """Where the conversion of ``source`` lives: named after the file and what it holds
    (its size and modification time), so a replaced model is converted anew."""
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir / f"{source.stem}.{key.hexdigest()[:16]}.{suffix}.gguf"


def file_type(source: Path) -> int | None:
    """general.file_type of a GGUF file; None if it cannot be read (loading it then says
    why, naming the setting)."""
    import llama_cpp

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True                  # the header and the vocabulary, no weights
    model = llama_cpp.llama_model_load_from_file(str(source).encode(), params)
    if not model:
        return None
    try:
        value = ctypes.create_string_buffer(32)
        if llama_cpp.llama_model_meta_val_str(model, b"general.file_type", value, 32) < 0:
            return None
        return int(value.value) if value.value.isdigit() else None
    finally:
        llama_cpp.llama_model_free(model)


def for_cpu(source: Path, cache_dir: Path, on_gpu: bool) -> Path:
    """The GGUF file to load for ``source``: a converted copy in ``cache_dir`` where that
    is faster on the CPU, else ``source`` itself."""
    # llama.cpp logs through llama-cpp-python's logger, which prints every line (the
    # converter's hundreds) until a model is loaded with verbose=False: quiet it first.
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    target = target_type(file_type(source), on_gpu)
    if target is None:
        return source
    ftype, suffix = target
    converted = converted_path(source, cache_dir, suffix)
    if converted.is_file():
        return converted
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _convert(source, converted, ftype)
    except OSError as exc:
        event(log, "llm_weights_not_converted", level=logging.WARNING, model=str(source),
              cache=str(cache_dir), error=str(exc))
        return source
    event(log, "llm_weights_converted", model=str(source), to=suffix, path=str(converted))
    return converted


def _convert(source: Path, converted: Path, ftype: int) -> None:
    import llama_cpp

    partial = converted.with_name(f".{converted.name}.{os.getpid()}.part")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 1
    try:
        failed = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(),
                                                ctypes.byref(params))
        if failed or not partial.is_file():
            raise OSError(f"llama.cpp could not write {partial} (status {failed})")
        os.replace(partial, converted)     # a reader never sees half a file
    finally:
        partial.unlink(missing_ok=True)
