"""Call recordings: one stereo WAV per call, caller left, TOM right, in call time.

The hub only hands frames over (``Recording.caller`` / ``.tom``) into one bounded queue;
a dedicated writer thread does every file operation, so the hub never waits on the disk.
A full queue drops the frame, counts it and marks it in the recording's sidecar.

Call time is the caller's audio: each frame FreeSWITCH forks to TOM is 20 ms of the call.
TOM's frames go at the call time at which they were sent, or right after TOM's previous
frame when that is later; where TOM sent nothing, its channel is silent. So both channels
hold exactly the samples FreeSWITCH carried, aligned to the frame.

The WAV header is rewritten with every write (once a second of audio), so a kill -9 leaves
a file every WAV reader plays up to the last second written. A write that fails (full
disk, read-only file system) stops that recording, counts the error and keeps the call
going. Each WAV has a JSON sidecar, written when the recording ends.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import tempfile
import threading
import time
import wave
from typing import Callable

import gevent

from tomctl.logs import event
from tomctl.metrics import Metrics
from tomctl.recording.qc import QcError, check_file
from tomctl.telephony import wire

log = logging.getLogger(__name__)

QUEUE_ITEMS = 3000           # about 30 s of two calls' audio in both directions
WRITE_EVERY_S = 1.0


class RecordingWriter:
    """The one thread that writes every recording."""

    def __init__(self, directory: str, metrics: Metrics,
                 on_finished: Callable[["Recording", dict | None], None]) -> None:
        """``on_finished(recording, qc report or None)`` runs on the hub after each one."""
        self.directory = directory
        self.metrics = metrics
        self._on_finished = on_finished
        self._loop = gevent.get_hub().loop
        # Unbounded for the open and close of a recording, which must get through; frames
        # are dropped once QUEUE_ITEMS wait (post).
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        os.chmod(self.directory, 0o700)       # makedirs' mode passes through the umask
        self._thread = threading.Thread(target=self._run, name="tom-recording", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop; waits (yielding to the hub) up to ``timeout_s``."""
        if self._thread is not None:
            self._queue.put_nowait(None)
            deadline = time.monotonic() + timeout_s
            while self._thread.is_alive() and time.monotonic() < deadline:
                gevent.sleep(0.02)

    def begin(self, call_id: str, rate: int, consent: str) -> "Recording":
        recording = Recording(self, call_id, rate, consent)
        self.post(recording, "open", b"")
        return recording

    def post(self, recording: "Recording", kind: str, data: bytes) -> bool:
        """Queue one item without waiting; False when it is a frame and the queue is full."""
        if data and self._queue.qsize() >= QUEUE_ITEMS:
            return False
        self._queue.put_nowait((recording, kind, data))
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            recording, kind, data = item
            try:
                recording.handle(kind, data)
            except OSError as exc:          # full disk, read-only, gone: stop this one
                recording.fail(exc)
                self.metrics.record_error("recording")
                event(log, "recording_failed", level=logging.ERROR, call=recording.call_id,
                      error=exc.strerror or str(exc))
            if kind == "close":
                self._loop.run_callback_threadsafe(self._on_finished, recording,
                                                   self._check(recording))

    @staticmethod
    def _check(recording: "Recording") -> dict | None:
        """The quality checks, here in the background, of a recording that was written."""
        if recording.error or not recording.seconds:
            return None
        try:
            return check_file(recording.path)
        except QcError as exc:
            event(log, "recording_qc_failed", level=logging.WARNING, call=recording.call_id,
                  error=str(exc))
            return None


class Recording:
    def __init__(self, writer: RecordingWriter, call_id: str, rate: int, consent: str) -> None:
        self.call_id = wire.check_uuid(call_id)
        self.path = os.path.join(writer.directory, f"{call_id}.wav")
        self.sidecar_path = os.path.join(writer.directory, f"{call_id}.json")
        self.rate = rate
        self.consent = consent
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.dropped_frames = 0
        self.error = ""
        self.seconds = 0.0
        self._writer = writer
        self._wav: wave.Wave_write | None = None
        self._left = bytearray()       # caller samples not yet written
        self._right = bytearray()      # TOM's, from the same call time on (may run ahead)
        self._pending = bytearray()    # interleaved, waiting for the next write
        self._closed = False

    # -- the hub's side: hand over, never wait ----------------------------------------------

    def caller(self, frame: bytes) -> None:
        self._post("caller", frame)

    def tom(self, frame: bytes) -> None:
        self._post("tom", frame)

    def finish(self) -> None:
        if not self._closed:
            self._closed = True
            self.ended_at = time.time()
            self._writer.post(self, "close", b"")

    def _post(self, kind: str, frame: bytes) -> None:
        if self._closed or self.error:
            return
        if not self._writer.post(self, kind, frame):
            self.dropped_frames += 1
            self._writer.metrics.recording_frames_dropped.inc()

    # -- the writer thread's side ------------------------------------------------------------

    def handle(self, kind: str, data: bytes) -> None:
        if self.error and kind != "close":
            return
        if kind == "open":
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._wav = wave.open(os.fdopen(fd, "wb"), "wb")
            self._wav.setnchannels(2)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.rate)
            self._wav.writeframes(b"")           # a valid, empty WAV from the start
        elif kind == "caller":
            self._left += data
            if len(self._right) < len(self._left):
                self._right += bytes(len(self._left) - len(self._right))
            self._interleave(len(self._left))
        elif kind == "tom":
            self._right += data
        elif kind == "close":
            if len(self._left) < len(self._right):       # TOM's last words, after the caller
                self._left += bytes(len(self._right) - len(self._left))
            self._interleave(len(self._left))
            self._flush()
            if self._wav is not None:
                self._wav.close()
                self._wav = None
            self._write_sidecar()

    def _interleave(self, length: int) -> None:
        left = memoryview(self._left)[:length].cast("h")
        right = memoryview(self._right)[:length].cast("h")
        pairs = bytearray(length * 2)
        both = memoryview(pairs).cast("h")
        both[0::2] = left
        both[1::2] = right
        del left, right, both
        del self._left[:length]
        del self._right[:length]
        self._pending += pairs
        if len(self._pending) >= self.rate * 4 * WRITE_EVERY_S:
            self._flush()

    def _flush(self) -> None:
        if self._pending and self._wav is not None:
            self._wav.writeframes(bytes(self._pending))   # rewrites the header's sizes too
            self.seconds += len(self._pending) / 4 / self.rate
        self._pending.clear()

    def fail(self, exc: OSError) -> None:
        self.error = exc.strerror or str(exc)
        self._pending.clear()
        self._left.clear()
        self._right.clear()
        if self._wav is not None:
            try:
                self._wav.close()
            except OSError:
                pass
            self._wav = None
        if not self.seconds:            # nothing was written: no empty file is left behind
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def sidecar(self) -> dict:
        return {"call": self.call_id, "file": os.path.basename(self.path), "rate": self.rate,
                "channels": {"left": "caller", "right": "tom"}, "consent": self.consent,
                "started_at": self.started_at, "ended_at": self.ended_at,
                "seconds": round(self.seconds, 2), "dropped_frames": self.dropped_frames,
                "error": self.error or None}

    def _write_sidecar(self) -> None:
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(self.sidecar_path),
                                             suffix=".part")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump(self.sidecar(), out)
            os.replace(temporary, self.sidecar_path)     # mkstemp files are 0600 already
        except BaseException:
            os.unlink(temporary)
            raise


class BrowserRecordings:
    """Recordings of browser conversations. The page's checkbox is the consent; each
    recorded session gets a call record of its own (caller "browser", outcome "browser"),
    so that retention treats its recording like a call's."""

    def __init__(self, mode: str, writer: RecordingWriter, store) -> None:
        self._always = mode == "always"
        self._writer = writer
        self._store = store

    def begin(self, rate: int, ticked: bool) -> Recording | None:
        if not (self._always or ticked):
            return None
        session = wire.new_uuid()
        consent = "not_asked" if self._always else "given"
        now = time.time()
        self._store.call_started(session, "browser", now)
        self._store.call_answered(session, now)
        self._store.call_consent(session, consent)
        event(log, "recording_started", call=session, consent=consent, source="browser")
        return self._writer.begin(session, rate, consent)

    def end(self, recording: Recording) -> None:
        recording.finish()
        self._store.call_ended(recording.call_id, time.time(), "browser", "", 0)
