"""The systemd unit passes systemd-analyze, and TOM speaks systemd's notify protocol."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gevent import socket

from tomctl import config
from tomctl.systemd import Watchdog, notify

UNITS = Path(__file__).parent.parent / "systemd"


@pytest.mark.parametrize("unit", sorted(path.name for path in [
    *UNITS.glob("*.service"), *UNITS.glob("*.timer")]))
def test_units_pass_systemd_analyze_verify(unit, tmp_path):
    assert shutil.which("systemd-analyze"), "needs systemd-analyze (apt-get install systemd)"
    # The units name the installed path; point them at this checkout's tomctl, which exists.
    # A timer is verified together with the service it starts.
    for path in [*UNITS.glob("*.service"), *UNITS.glob("*.timer")]:
        text = path.read_text().replace("/opt/tom/.venv/bin/tomctl",
                                        str(Path(sys.prefix) / "bin" / "tomctl"))
        (tmp_path / path.name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(tmp_path / unit)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_every_timer_has_its_service_and_the_units_expected():
    names = {path.name for path in UNITS.iterdir()}
    assert {"tom.service", "tom-selfcheck.timer", "tom-nightly-synthetic.timer",
            "tom-purge.timer", "tom-learn.timer"} <= names
    for timer in UNITS.glob("*.timer"):
        assert timer.with_suffix(".service").name in names


def test_the_service_waits_for_ready_and_has_a_watchdog():
    text = (UNITS / "tom.service").read_text()
    assert "Type=notify" in text and "WatchdogSec=" in text
    assert "EnvironmentFile=/etc/tom/tom.env" in text and "User=tom" in text


def test_systemd_waits_longer_than_tom_drains_its_calls():
    text = (UNITS / "tom.service").read_text()
    stop_s = int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.M).group(1))
    # The drain, then closing the models and the store, well inside systemd's SIGKILL.
    assert stop_s >= config.load({}).telephony.drain_s + 15


def test_ready_and_watchdog_reach_the_notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(5)
    try:
        assert notify("READY=1", {"NOTIFY_SOCKET": path})
        assert receiver.recv(100) == b"READY=1"
        watchdog = Watchdog({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
        assert watchdog.interval_s == 0.1
        watchdog.start()
        assert receiver.recv(100) == b"WATCHDOG=1"
        assert receiver.recv(100) == b"WATCHDOG=1"   # and again, half the interval later
        watchdog.stop()
    finally:
        receiver.close()
    assert not notify("READY=1", {})    # not run by systemd: nothing to do
