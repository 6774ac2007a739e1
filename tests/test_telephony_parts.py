"""The small pure parts of the phone path: port pairs, number hashing, media framing."""

import pytest

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
