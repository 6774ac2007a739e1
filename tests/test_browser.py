"""The browser test page in a real headless Chromium, against `tomctl serve` and its models.

Chromium's fake microphone plays a WAV of a spoken question; the page streams it to TOM over
the WebSocket, and TOM's transcript, reply and audio must come back to the page.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.browser import Browser
from tests.leaks import wait_until
from testkit.serve import start_serve
from testkit.speech import piper_say, silence, word_error_rate

# `make test` installs Debian's chromium; without it this test fails rather than skips.
assert shutil.which("chromium"), "needs Debian's chromium: apt-get install chromium"

ARTIFACTS = Path(__file__).parent / "artifacts"
QUESTION = "What are your opening hours on Saturday?"
# Chromium's fake capture converts any PCM WAV to the stream's format; 48 kHz is what a real
# microphone most often gives.
MIC_RATE = 48000
# The greeting is a reply too; reply_done comes only with the answer to the question.
TOM_ANSWERED = ("window.tomPage && tomPage.transcripts.length > 0 && "
                "tomPage.events.includes('reply_done') && tomPage.audioBytesReceived > 16000")


@pytest.fixture
def tom_serve(tmp_path):
    """`tomctl serve` as an operator runs it (its own process, its own models); yields the
    page's URL from its `ready` log line and checks that SIGTERM stops it cleanly."""
    environ = {**os.environ, "TOM_ESL_LISTEN_PORT": "0", "TOM_GATEWAY_PORT": "0",
               "TOM_DEV_ALLOW_NO_JWT": "true", "TOM_SPOOL_DIR": str(tmp_path / "spool"),
               "TOM_LOG_FORMAT": "json", "TOM_DB_PATH": str(tmp_path / "calls.db"),
               "TOM_ADMIN_PORT": "0",
               "TOM_MEDIA_PORT_FIRST": "43000",
               "TOM_MEDIA_PORT_LAST": "43099"}
    process, ready = start_serve(environ)
    try:
        yield ready["page"].rstrip("/")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return path


@pytest.mark.timeout(120)
def test_page_talks_to_tom_in_chromium(engine, tom_serve, tmp_path):
    question = piper_say(engine, QUESTION, MIC_RATE)
    microphone = write_wav(tmp_path / "microphone.wav", np.concatenate(
        [silence(1.5, MIC_RATE), question, silence(8.0, MIC_RATE)]), MIC_RATE)

    with Browser(fake_audio_wav=microphone) as browser:
        page = browser.open(tom_serve + "/?autoconnect=1")
        page.wait_for(TOM_ANSWERED, timeout_s=75)
        state = page.evaluate("window.tomPage")
        # The latencies arrive with the end of the reply: wait for them, for the screenshot.
        page.wait_for("document.getElementById('latencies').textContent", timeout_s=15)
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = page.screenshot(ARTIFACTS / "browser.png")
        # A thumb up rates the conversation, once: the second click cannot be made.
        page.evaluate("document.getElementById('thumbs-up').click()")
        rated = page.evaluate("[tomPage.rated, document.getElementById('thumbs-down').disabled]")
        wait_for_row(tmp_path / "calls.db", "select kind, value from feedback")

    assert state["state"] == "ready"
    # The question answered is the last transcript (an early turn taken in a pause of the
    # caller's is given up when they go on).
    assert word_error_rate(QUESTION, state["transcripts"][-1]) <= 0.5, state["transcripts"]
    assert all(reply.strip() for reply in state["replies"])
    assert state["playback"].get("playedMs", 0) > 0, state["playback"]   # the worklet played
    assert screenshot.stat().st_size > 0
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert rated == [True, True]
    with sqlite3.connect(tmp_path / "calls.db") as db:
        assert db.execute("select kind, value from feedback").fetchall() == [("thumbs", 5)]


def wait_for_row(path: Path, query: str, timeout_s: float = 10) -> None:
    """The service writes in its own thread: wait until the row is there."""
    def there() -> bool:
        with sqlite3.connect(path) as db:
            return bool(db.execute(query).fetchall())
    wait_until(there, timeout_s, f"a row for {query!r}")
