"""A real headless Chromium, driven over the DevTools protocol on a pipe, for the browser tests.

With --remote-debugging-pipe Chromium reads commands from its fd 3 and writes replies and
events to its fd 4, each a JSON message ended by a NUL byte. One reader greenlet reads with
non-blocking reads, so the hub never waits on Chromium, and every command waits for its reply
with a deadline. The microphone is a WAV file (Chromium's fake capture device); the speaker is
whatever Chromium falls back to without a sound card, which still runs the audio graph.
"""

from __future__ import annotations

import base64
import fcntl
import itertools
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent
import gevent.os
import gevent.subprocess
from gevent.event import AsyncResult

CHROMIUM = "/usr/bin/chromium"
COMMAND_TIMEOUT_S = 10.0
START_TIMEOUT_S = 30.0
READ_BYTES = 1 << 16
CONSOLE_LIMIT = 200          # console lines kept per page, the newest


class BrowserError(Exception):
    """Chromium failed, closed, or did not answer in time."""


class PageError(BrowserError):
    """A script in the page threw."""


class Browser:
    def __init__(self, fake_audio_wav: Path | None = None, executable: str = CHROMIUM,
                 window_size: tuple[int, int] = (1000, 800)) -> None:
        self._fake_audio_wav = fake_audio_wav
        self._executable = executable
        self._window_size = window_size
        self._process: gevent.subprocess.Popen | None = None
        self._profile: str | None = None
        self._to_chrome = self._from_chrome = -1
        self._reader: gevent.Greenlet | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, AsyncResult] = {}
        self._pages: dict[str, Page] = {}
        self._gone: str | None = None      # why the pipe is unusable, once it is
        self.version: dict = {}

    def __enter__(self) -> Browser:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- life --------------------------------------------------------------------------------

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self._profile = tempfile.mkdtemp(prefix="tom-chromium-")
        commands_read, self._to_chrome = _high_pipe()
        self._from_chrome, replies_write = _high_pipe()
        # Chromium wants the pipe on fds 3 and 4 exactly; bash moves them there before exec.
        redirect = 'exec "$@" 3<&%d 4>&%d %d<&- %d>&-' % (
            commands_read, replies_write, commands_read, replies_write)
        with open(self.log_path, "wb") as log:
            self._process = gevent.subprocess.Popen(
                ["/bin/bash", "-c", redirect, "chromium", self._executable, *self._arguments()],
                pass_fds=(commands_read, replies_write), stdin=gevent.subprocess.DEVNULL,
                stdout=log, stderr=gevent.subprocess.STDOUT, start_new_session=True)
        os.close(commands_read)
        os.close(replies_write)
        gevent.os.make_nonblocking(self._to_chrome)
        gevent.os.make_nonblocking(self._from_chrome)
        self._reader = gevent.spawn(self._read)
        try:
            self.version = self.send("Browser.getVersion", timeout_s=timeout_s)
        except BrowserError:
            self.close()
            raise

    def _arguments(self) -> list[str]:
        arguments = [
            "--headless=new", "--no-sandbox", "--remote-debugging-pipe",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={self._profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu",
            "--window-size=%d,%d" % self._window_size, "about:blank",
        ]
        if self._fake_audio_wav is not None:
            arguments.insert(-1, f"--use-file-for-fake-audio-capture={self._fake_audio_wav}%noloop")
        return arguments

    @property
    def log_path(self) -> Path:
        """Chromium's own stdout and stderr."""
        return Path(self._profile or tempfile.gettempdir()) / "chromium.log"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self, timeout_s: float = 5.0) -> None:
        """Ends Chromium and every process it started, and removes its profile."""
        if self._process is None:
            return
        if self._gone is None:
            try:
                self.send("Browser.close", timeout_s=min(2.0, timeout_s))
            except BrowserError:
                pass                         # it is killed below either way
        try:
            self._process.wait(timeout=timeout_s)
        except gevent.subprocess.TimeoutExpired:
            pass
        # Renderers and helpers share the process group started for Chromium.
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._process.wait(timeout=timeout_s)
        self._fail_all("browser closed")
        if self._reader is not None:
            self._reader.kill(block=True, timeout=timeout_s)
        for fd in (self._to_chrome, self._from_chrome):
            _close_quietly(fd)
        self._to_chrome = self._from_chrome = -1
        self._process = None
        # A profile is hundreds of files: remove it off the hub.
        gevent.get_hub().threadpool.apply(shutil.rmtree, (self._profile, True))

    # -- the protocol --------------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, session_id: str | None = None,
             timeout_s: float = COMMAND_TIMEOUT_S) -> dict:
        """One DevTools command; its result, or BrowserError on an error reply or no reply."""
        if self._gone is not None:
            raise BrowserError(f"{method}: {self._gone}")
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        waiter = AsyncResult()
        self._pending[command_id] = waiter
        try:
            self._write(json.dumps(message).encode() + b"\0")
            reply = waiter.get(timeout=timeout_s)
        except OSError as exc:               # Chromium is gone (EPIPE)
            raise BrowserError(f"{method}: writing to Chromium failed: {exc}; its log ends:\n"
                               + self.log_tail()) from None
        except gevent.Timeout:
            raise BrowserError(f"{method}: no reply within {timeout_s} s") from None
        finally:
            self._pending.pop(command_id, None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')} "
                               f"({reply['error'].get('data', '')})")
        return reply.get("result", {})

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = gevent.os.nb_write(self._to_chrome, view)
            view = view[written:]

    def _read(self) -> None:
        buffer = bytearray()
        try:
            while True:
                chunk = gevent.os.nb_read(self._from_chrome, READ_BYTES)
                if not chunk:
                    break
                scanned = len(buffer)
                buffer += chunk
                start, end = 0, buffer.find(b"\0", scanned)
                while end >= 0:
                    self._dispatch(json.loads(buffer[start:end]))
                    start, end = end + 1, buffer.find(b"\0", end + 1)
                del buffer[:start]
        except OSError as exc:
            self._fail_all(f"reading Chromium's pipe failed: {exc}")
        finally:
            self._fail_all("Chromium closed its pipe; its log ends:\n" + self.log_tail())

    def _dispatch(self, message: dict) -> None:
        if "id" in message:
            reply = self._pending.get(message["id"])
            if reply is not None:
                reply.set(message)
            return
        page = self._pages.get(message.get("sessionId", ""))
        if page is not None:
            page._on_event(message.get("method", ""), message.get("params", {}))

    def _fail_all(self, why: str) -> None:
        if self._gone is None:
            self._gone = why
        for reply in list(self._pending.values()):
            reply.set({"error": {"message": self._gone}})

    # -- pages -----------------------------------------------------------------------------

    def open(self, url: str, timeout_s: float = COMMAND_TIMEOUT_S) -> Page:
        """A new tab loading ``url``, attached in flat mode (commands carry its sessionId)."""
        target = self.send("Target.createTarget", {"url": url}, timeout_s=timeout_s)
        attached = self.send("Target.attachToTarget",
                             {"targetId": target["targetId"], "flatten": True},
                             timeout_s=timeout_s)
        page = Page(self, target["targetId"], attached["sessionId"])
        self._pages[page.session_id] = page
        page.send("Runtime.enable", timeout_s=timeout_s)    # console messages, for diagnosis
        return page


class Page:
    def __init__(self, browser: Browser, target_id: str, session_id: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id
        self.console: list[str] = []

    def send(self, method: str, params: dict | None = None,
             timeout_s: float = COMMAND_TIMEOUT_S) -> dict:
        return self.browser.send(method, params, self.session_id, timeout_s)

    def evaluate(self, expression: str, timeout_s: float = COMMAND_TIMEOUT_S) -> Any:
        """The expression's value (JSON-like), awaited if it is a promise."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, timeout_s)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise PageError(details.get("exception", {}).get("description")
                            or details.get("text", "exception"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float) -> Any:
        """Polls every 100 ms until the expression is truthy; returns its value."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while True:
            remaining_s = deadline - time.monotonic()
            try:
                last = self.evaluate(expression, timeout_s=max(0.5, min(COMMAND_TIMEOUT_S,
                                                                        remaining_s)))
                if last:
                    return last
            except PageError as exc:         # e.g. the page has not defined it yet
                last = exc
            if remaining_s <= 0:
                raise BrowserError(
                    f"timed out after {timeout_s} s waiting for {expression!r}; last value: "
                    f"{last!r}; console:\n" + "\n".join(self.console[-20:]))
            gevent.sleep(min(0.1, max(0.0, remaining_s)))

    def screenshot(self, path: Path, timeout_s: float = COMMAND_TIMEOUT_S) -> Path:
        """A PNG of the visible page."""
        shot = self.send("Page.captureScreenshot", {"format": "png"}, timeout_s)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def _on_event(self, method: str, params: dict) -> None:
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", "")))
                            for arg in params.get("args", []))
            self._log(f"{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self._log("exception: " + str(details.get("exception", {}).get("description")
                                          or details.get("text")))

    def _log(self, line: str) -> None:
        self.console.append(line)
        del self.console[:-CONSOLE_LIMIT]


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are above fd 4, so moving them onto fds 3 and 4 cannot clash."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


def _close_quietly(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
