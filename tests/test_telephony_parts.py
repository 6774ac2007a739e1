"""The small pure parts of the phone path: port pairs, number hashing, media framing."""

import gevent
import gevent.socket
import pytest

from tests.leaks import wait_until
from tomctl.privacy import CallerInfo, NumberHasher
from tomctl.telephony.media import PortPool, PortsExhausted, UnicastMedia


def test_port_pairs_are_reused_only_after_release():
    pool = PortPool(40000, 40005)
    pairs = [pool.take(), pool.take(), pool.take()]
    assert pairs == [(40000, 40001), (40002, 40003), (40004, 40005)]
    with pytest.raises(PortsExhausted):
        pool.take()
    pool.release(pairs[1])
    assert pool.take() == (40002, 40003)
    assert pool.in_use == 3


def test_numbers_are_hashed_with_the_salt():
    first, second = NumberHasher("salt-a"), NumberHasher("salt-b")
    assert first.hash("4915112345678") == first.hash("4915112345678")
    assert first.hash("4915112345678") != second.hash("4915112345678")
    assert "4915112345678" not in repr(CallerInfo(first.hash("4915112345678"), "4915112345678"))
    assert first.hash("") == ""


def test_datagrams_of_any_size_become_20ms_frames():
    frames = []
    media = UnicastMedia("127.0.0.1", 1, "127.0.0.1", 2, 8000, frames.append)
    media._take(b"\x01" * 320)
    media._take(b"\x02" * 100)
    media._take(b"\x03" * 540)
    assert [len(f) for f in frames] == [320, 320, 320]
    assert frames[1] == b"\x02" * 100 + b"\x03" * 220


def _receive_paced_frames(patience_s: float, count: int = 25) -> list[tuple[int, bytes]]:
    """Frames sent every 20 ms over real UDP, as (hub loop iteration, frame) handed on."""
    sender = gevent.socket.socket(gevent.socket.AF_INET, gevent.socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    taken: list[tuple[int, bytes]] = []
    loop = gevent.get_hub().loop
    media = UnicastMedia("127.0.0.1", 0, *sender.getsockname(), 8000,
                         lambda frame: taken.append((loop.iteration, frame)),
                         lambda: patience_s)
    media.start()
    try:
        address = media._sock.getsockname()
        for n in range(count):
            sender.sendto(bytes([n]) * 320, address)
            gevent.sleep(0.02)          # the line's pace: a frame every 20 ms
        wait_until(lambda: len(taken) >= count, 5, f"all {count} frames")
    finally:
        media.close()
        sender.close()
    return taken


def test_frames_that_may_wait_are_read_in_bursts_in_order():
    # A listening call woke the hub for every 20 ms frame, and the wake-ups were most of
    # what it cost. While the call is idle, its frames wait in the socket and come in bursts.
    taken = _receive_paced_frames(patience_s=0.1)
    assert [frame[0] for _, frame in taken] == list(range(25))     # every frame, in order
    wakes = {iteration for iteration, _ in taken}
    assert len(wakes) <= 25 // 3, f"{len(wakes)} wake-ups for 25 frames"


def test_frames_that_may_not_wait_are_handed_on_as_they_come():
    taken = _receive_paced_frames(patience_s=0.0)
    assert [frame[0] for _, frame in taken] == list(range(25))
    assert len({iteration for iteration, _ in taken}) > 25 // 3
