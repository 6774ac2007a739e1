"""A Q4_1 LLM is converted once to Q8_0 for the CPU, which evaluates prompts faster from it,
and answers as the original does; a cache that cannot be written changes nothing."""

import os

import gevent
import numpy as np
import pytest

from tomctl.errors import ModelError
from tomctl.speech import assets, llm_weights
from tomctl.speech.llama import LlamaLanguageModel
from tomctl.speech.llm_weights import FTYPE_Q4_1, FTYPE_Q8_0

Q4_K_M, F16 = 15, 1


@pytest.mark.parametrize("file_type, on_gpu, expected", [
    (FTYPE_Q4_1, False, (FTYPE_Q8_0, "q8_0")),
    (FTYPE_Q4_1, True, None),         # a GPU has fast kernels for it, and no memory to spare
    (FTYPE_Q8_0, False, None),
    (Q4_K_M, False, None),            # a bigger model's usual type: Q8_0 would double it
    (F16, False, None),
    (None, False, None),              # unknown: load it as it is
])
def test_which_weights_are_converted(file_type, on_gpu, expected):
    assert llm_weights.target_type(file_type, on_gpu) == expected


def _off_hub(fn, *args):
    return gevent.get_hub().threadpool.apply(fn, args)


def _next_token_probabilities(path, tokens):
    from llama_cpp import Llama

    model = Llama(str(path), n_ctx=256, n_threads=1, logits_all=True, verbose=False)
    model.eval(tokens)
    logits = np.array(model.scores[:len(tokens)], dtype=np.float64)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def test_the_bundled_model_is_converted_once_and_answers_as_before(tmp_path):
    source = assets.llm_model_file("")
    assert _off_hub(llm_weights.file_type, source) == FTYPE_Q4_1
    cache = tmp_path / "cache"
    converted = _off_hub(llm_weights.for_cpu, source, cache, False)
    assert converted.parent == cache and converted != source
    assert _off_hub(llm_weights.file_type, converted) == FTYPE_Q8_0
    written = converted.stat().st_mtime_ns
    assert _off_hub(llm_weights.for_cpu, source, cache, False) == converted
    assert converted.stat().st_mtime_ns == written, "converted again"
    assert sorted(p.name for p in cache.iterdir()) == [converted.name], "a partial file left"
    assert _off_hub(llm_weights.for_cpu, source, cache, True) == source

    from llama_cpp import Llama
    vocab = _off_hub(lambda: Llama(str(source), vocab_only=True, verbose=False))
    tokens = vocab.tokenize(b"<|im_start|>user\nDo you have brake pads for a Volkswagen "
                            b"Golf?<|im_end|>\n<|im_start|>assistant\nYes, we have front "
                            b"brake pads for the Golf, in stock.", special=True)
    before = _off_hub(_next_token_probabilities, source, tokens)
    after = _off_hub(_next_token_probabilities, converted, tokens)
    divergence = (before * (np.log(before + 1e-30) - np.log(after + 1e-30))).sum(axis=1)
    assert divergence.mean() < 0.03
    assert (before.argmax(axis=1) == after.argmax(axis=1)).mean() >= 0.85


def test_a_replaced_model_is_converted_anew(tmp_path):
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    first = llm_weights.converted_path(model, tmp_path, "q8_0")
    os.utime(model, ns=(1, 1))
    assert llm_weights.converted_path(model, tmp_path, "q8_0") != first


def test_a_cache_that_cannot_be_written_leaves_the_model_as_it_is(tmp_path):
    source = assets.llm_model_file("")
    (tmp_path / "not-a-directory").write_text("")
    cache = tmp_path / "not-a-directory" / "cache"
    assert _off_hub(llm_weights.for_cpu, source, cache, False) == source


def test_a_broken_gguf_still_fails_naming_it_when_a_cache_is_set(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    model = LlamaLanguageModel(broken, 1, 512, 16, 0.3, 1, 0, cache_dir=tmp_path / "cache")
    with pytest.raises(ModelError, match="broken.gguf.*TOM_LLM_MODEL"):
        _off_hub(model.load)
    assert not (tmp_path / "cache").exists()
