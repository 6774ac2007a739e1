"""The language model: llama.cpp through llama-cpp-python, streaming.

One ``Llama`` object runs one completion at a time, so TOM loads TOM_LLM_INSTANCES copies
and runs completions in a thread pool of exactly that size: requests beyond it wait in the
pool's FIFO queue, and that wait is measured (tom_llm_queue_wait_seconds).

The system prompt's KV state is reused between turns: llama-cpp-python keeps the evaluated
tokens of the last completion and only evaluates the part of the next prompt after the
longest common prefix. Every conversation's prompt starts with the same system prompt, so
that prefix stays evaluated even when conversations take turns on one instance.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from tomctl.errors import LanguageModelError, ModelError
from tomctl.speech.offload import StopFlag
from tomctl.speech.sentences import SentenceSplitter

Message = dict[str, str]

# After its first sentence the LLM waits (at most this long) for that sentence's audio: on a
# small CPU, generating the rest would slow Piper down exactly when the caller is waiting.
# The rest is still ready long before the first sentence has been spoken.
FIRST_AUDIO_WAIT_S = 0.5


class LlamaLanguageModel:
    def __init__(self, path: Path, instances: int, context_tokens: int, max_tokens: int,
                 temperature: float, cpu_threads: int, gpu_layers: int) -> None:
        self.path = path
        self.instances = instances
        self._context_tokens = context_tokens
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._cpu_threads = cpu_threads
        self._gpu_layers = gpu_layers
        self._free: queue.Queue = queue.Queue()

    def load(self) -> None:
        from llama_cpp import Llama

        for _ in range(self.instances):
            try:
                model = Llama(str(self.path), n_ctx=self._context_tokens,
                              n_threads=self._cpu_threads or None,
                              n_gpu_layers=self._gpu_layers, verbose=False)
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelError(f"LLM {self.path} could not be loaded (TOM_LLM_MODEL): {exc}") \
                    from exc
            self._free.put(model)

    def prime(self, messages: list[Message]) -> None:
        """Evaluate ``messages`` (ending with an empty user turn) so that the next completion
        only evaluates what follows them. Blocking: runs in the LLM worker pool."""
        with self._instance() as model:
            model.create_chat_completion(messages, max_tokens=1)

    @contextlib.contextmanager
    def _instance(self) -> Iterator:
        """A free Llama copy. Never waits: the pool has exactly one thread per copy."""
        model = self._free.get()
        try:
            yield model
        finally:
            self._free.put(model)

    def stream_sentences(self, messages: list[Message], stop: StopFlag,
                         emit: Callable[[str, object], None], submitted_at: float,
                         first_audio: threading.Event | None = None) -> None:
        """Generate a reply and ``emit`` ("queue_wait", s), ("first_token", s),
        ("sentence", text)… then return. Blocking: runs in the LLM worker pool."""
        with self._instance() as model:
            self._stream(model, messages, stop, emit, submitted_at, first_audio)

    def _stream(self, model, messages: list[Message], stop: StopFlag,
                emit: Callable[[str, object], None], submitted_at: float,
                first_audio: threading.Event | None) -> None:
        started: float | None = time.monotonic()
        emit("queue_wait", started - submitted_at)
        splitter = SentenceSplitter()
        try:
            chunks = model.create_chat_completion(
                messages, stream=True, max_tokens=self._max_tokens,
                temperature=self._temperature)
            try:
                for chunk in chunks:
                    if stop.is_set():
                        return
                    delta = chunk["choices"][0]["delta"].get("content")
                    if not delta:
                        continue
                    if started is not None:
                        emit("first_token", time.monotonic() - started)
                        started = None
                    for sentence in splitter.push(delta):
                        emit("sentence", sentence)
                        if first_audio is not None:
                            first_audio.wait(FIRST_AUDIO_WAIT_S)
                            first_audio = None
            finally:
                chunks.close()
            if not stop.is_set():
                for sentence in splitter.flush():
                    emit("sentence", sentence)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise LanguageModelError(f"LLM completion failed: {exc}") from exc
