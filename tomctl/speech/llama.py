"""The language model: llama.cpp through llama-cpp-python, streaming.

One ``Llama`` object runs one completion at a time, so TOM loads TOM_LLM_INSTANCES copies
and the scheduler has exactly that many LLM threads. A completion is first-audio work until
its first sentence; after it, it checks between tokens whether a more urgent job (another
caller's first audio) waits for its CPU slot, and lets it go first.

Evaluated prompts are reused between turns: llama-cpp-python keeps the evaluated tokens of
the last completion and only evaluates the part of the next prompt after the longest common
prefix. A conversation's history is evaluated ahead of time (``prime``, while the caller
speaks), and each conversation goes back to the copy that holds its history if that copy is
free: evaluating a history anew costs a second or more on a small CPU, answering from a
primed one a tenth of that. Every prompt starts with the same system prompt, so even a copy
that served another conversation has that prefix evaluated.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from tomctl.errors import LanguageModelError, ModelError
from tomctl.speech import llm_weights
from tomctl.speech.offload import StopFlag
from tomctl.speech.sentences import SentenceSplitter

Message = dict[str, str]

# A history evaluated ahead takes a tenth of a second or two; evaluating it anew, a second.
WARM_COPY_WAIT_S = 1.0


class LlamaLanguageModel:
    def __init__(self, path: Path, instances: int, context_tokens: int, max_tokens: int,
                 temperature: float, cpu_threads: int, gpu_layers: int,
                 max_sentences: int = 0, cache_dir: Path | None = None) -> None:
        self.path = path
        self._cache_dir = cache_dir       # where a faster copy of the weights may be kept
        self.instances = instances
        self._context_tokens = context_tokens
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._max_sentences = max_sentences     # 0: as many as max_tokens allow
        self._cpu_threads = cpu_threads
        self._gpu_layers = gpu_layers
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._free: list = []              # least recently used first
        self._holds: dict[int, object] = {}  # id(copy) -> the conversation it has evaluated

    def load(self) -> None:
        from llama_cpp import Llama

        path = self.path
        if self._cache_dir is not None and self.path.is_file():
            path = llm_weights.for_cpu(self.path, self._cache_dir, on_gpu=self._gpu_layers != 0)
        for _ in range(self.instances):
            try:
                model = Llama(str(path), n_ctx=self._context_tokens,
                              n_threads=self._cpu_threads,
                              n_threads_batch=self._cpu_threads,
                              n_gpu_layers=self._gpu_layers, verbose=False)
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelError(f"LLM {self.path} could not be loaded (TOM_LLM_MODEL): {exc}") \
                    from exc
            self._free.append(model)

    def prime(self, messages: list[Message], key: object = None) -> None:
        """Evaluate ``messages`` (ending with an empty user turn) so that the next completion
        of conversation ``key`` only evaluates what follows them. Blocking: runs in an LLM
        thread of the scheduler."""
        with self._instance(key) as model:
            model.create_chat_completion(messages, max_tokens=1)

    @contextlib.contextmanager
    def _instance(self, key: object) -> Iterator:
        """The copy holding ``key``'s history, else the least recently used free one. If
        the copy holding it is busy (evaluating that very history ahead), waiting for it
        is cheaper than evaluating the history again on another copy. Otherwise it never
        waits: the scheduler has exactly one LLM thread per copy."""
        with self._lock:
            deadline = time.monotonic() + WARM_COPY_WAIT_S
            while key is not None and self._held_elsewhere(key) \
                    and time.monotonic() < deadline:
                self._returned.wait(deadline - time.monotonic())
            model = next((m for m in self._free
                          if key is not None and self._holds.get(id(m)) is key), self._free[0])
            self._free.remove(model)
            self._holds[id(model)] = key
        try:
            yield model
        finally:
            with self._lock:
                self._free.append(model)
                self._returned.notify_all()

    def _held_elsewhere(self, key: object) -> bool:
        """True while the copy holding ``key``'s history is busy."""
        free = {id(m) for m in self._free}
        return any(holder is key and copy not in free for copy, holder in self._holds.items())

    def stream_sentences(self, running, messages: list[Message], stop: StopFlag,
                         emit: Callable[[str, object], None], key: object = None,
                         temperature: float | None = None) -> None:
        """Generate a reply for conversation ``key`` and ``emit`` ("first_token", s),
        ("sentence", text)… then return. Blocking: runs in an LLM thread of the scheduler
        (``running``). ``temperature``: a variant's own, else the setting's."""
        with self._instance(key) as model:
            self._stream(model, messages, stop, emit, running,
                         self._temperature if temperature is None else temperature)

    def _stream(self, model, messages: list[Message], stop: StopFlag,
                emit: Callable[[str, object], None], running, temperature: float) -> None:
        started: float | None = time.monotonic()
        splitter = SentenceSplitter()
        try:
            chunks = model.create_chat_completion(
                messages, stream=True, max_tokens=self._max_tokens, temperature=temperature)
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
                        running.first_audio_done()
                    if splitter.looping:
                        return      # what came before the loop has been said
                    if self._max_sentences and splitter.sentences >= self._max_sentences:
                        return      # a phone answer is short; what follows goes unsaid
                    if not running.job.first_audio:
                        running.checkpoint()
            finally:
                chunks.close()
            if not stop.is_set():
                for sentence in splitter.flush():
                    emit("sentence", sentence)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise LanguageModelError(f"LLM completion failed: {exc}") from exc

