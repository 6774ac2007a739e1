"""The fake FreeSWITCH (testkit/fakes) checked against captures of a real one.

Every client here is a plain socket (tests/rawclient.py), never TOM's own code.
Capture files are in tests/data/freeswitch/ (copied from /work/shared/freeswitch/captures).
"""

from __future__ import annotations

import json
import random
import time
import wave

import gevent
import pytest
from gevent import socket

from testkit.fakes import FakeSwitch
from tests.rawclient import (Conn, Tom, capture_chunks, capture_frames,
                                   connect_inbound)

pytestmark = pytest.mark.timeout(30)

GOODBYE = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
S1_B = "08909cec-6c51-4eb5-89ce-446bdd31c413"   # leg B's uuid in 02-s1
# Values that differ by nature between two runs (ids, clocks, paths, durations).
VARYING = ("Core-UUID", "Event-Date-", "Event-Sequence", "Unique-ID", "Channel-Call-UUID",
           "Caller-Unique-ID", "Channel-Unique-ID", "Application-UUID", "Application-Data",
           "Playback-File-Path", "variable_uuid", "variable_call_uuid", "variable_session_id",
           "variable_origination_uuid", "variable_other_loopback_leg_uuid",
           "variable_current_application_data", "variable_playback_", "variable_last_arg",
           "variable_transfer_", "Caller-Transfer-Source", "Job-UUID")
# Not modelled: set on leg B by `uuid_send_dtmf B` in s1/s2 (see testkit/fakes/__init__.py).
UNMODELLED = {"variable_last_dtmf_duration"}

@pytest.fixture(autouse=True)
def fake_never_blocks_hub(hub_never_blocked):
    yield
    blocked = [stack for stack in hub_never_blocked if "/testkit/fakes/" in stack]
    assert not blocked, "the fake blocked the hub:\n" + blocked[0]


@pytest.fixture
def tom():
    server = Tom()
    yield server
    server.close()


@pytest.fixture
def switch(tom):
    fake = FakeSwitch(tom_address=tom.address)
    fake.start()
    yield fake
    fake.stop()
    assert fake.leaks() == []


def caller_pcm(seconds: float) -> bytes:
    return random.Random(7).randbytes(int(seconds * 16000) // 2 * 2)


def write_wav(path, seconds: float, rate: int = 8000) -> str:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(b"\x01\x00" * int(seconds * rate))
    return str(path)


def udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def free_udp_port() -> int:
    probe = udp_socket()
    port = probe.getsockname()[1]
    probe.close()
    return port


def unicast_cmd(local_port: int, remote_port: int) -> str:
    return ("sendmsg\ncall-command: unicast\nlocal-ip: 127.0.0.1\nlocal-port: %d\n"
            "remote-ip: 127.0.0.1\nremote-port: %d\ntransport: udp\n\n"
            % (local_port, remote_port))


ANSWER = "sendmsg\ncall-command: execute\nexecute-app-name: answer\n\n"


def answered(switch, tom, *, playback_events=True, linger=None, name="", audio_s=3.0, **kw):
    """The captured start (s1/s6): connect, myevents, [event plain PLAYBACK_*], answer."""
    call = switch.place_call(caller_pcm(audio_s), caller_id_name=name, **kw)
    conn = tom.accept()
    conn.send("connect\n\n")
    conn.frame()
    conn.send("myevents\n\n")
    conn.frame()
    if playback_events:
        conn.send("event plain PLAYBACK_START PLAYBACK_STOP\n\n")
        conn.frame()
    if linger is not None:
        conn.send(linger + "\n\n")
        conn.frame()
    conn.send(ANSWER)
    conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="answer")
    return call, conn


def goodbye_notice(uuid: str) -> bytes:
    return (b"Content-Type: text/disconnect-notice\nControlled-Session-UUID: " + uuid.encode()
            + b"\nContent-Disposition: disconnect\nContent-Length: 67\n\n" + GOODBYE)


def reply_of(conn: Conn):
    """The next reply, skipping events that may arrive first."""
    return conn.until(lambda f: f.content_type in ("command/reply", "api/response"))[-1]


def events(frames) -> list:
    return [f.event() for f in frames if f.content_type == "text/event-plain"]


def assert_same_shape(fake_events, captured_events, drop=()) -> None:
    """Same event names, same header names in the same order, same stable values."""
    skip = set(drop) | UNMODELLED
    assert [e.get("Event-Name") for e in fake_events] == \
        [e.get("Event-Name") for e in captured_events]
    for fake, real in zip(fake_events, captured_events):
        fake_headers = [h for h in fake.headers if h[0] not in skip]
        real_headers = [h for h in real.headers if h[0] not in skip]
        assert [n for n, _ in fake_headers] == [n for n, _ in real_headers], \
            real.get("Event-Name")
        for (name, value), (_, real_value) in zip(fake_headers, real_headers):
            if _comparable(name, real_value):
                assert value == real_value, (real.get("Event-Name"), name, value, real_value)


def _comparable(name: str, real_value: str) -> bool:
    if name.endswith(("sec", "msec", "usec")) or "duration" in name:
        return False    # call lengths
    if name.endswith("-Time") or "stamp" in name or "epoch" in name:
        return real_value == "0"   # a clock, or 0 for "never happened"
    return not name.startswith(VARYING)


# -- outbound socket: connect and the plain replies --------------------------------------
def test_nothing_before_first_command_then_connect_reply_as_captured(switch, tom):
    call = switch.place_call(caller_pcm(1), caller_id_name="")
    conn = tom.accept()
    assert conn.quiet_for(0.1)
    conn.send("connect\n\n")
    reply = conn.frame()
    captured = capture_frames("02-s1-outbound.txt")[0]
    assert reply.names() == captured.names()
    assert reply.raw.endswith(b"Content-Type: command/reply\nReply-Text: %2BOK%0A\n"
                              b"Socket-Mode: async\nControl: full\n\n")
    assert b"Content-Length" not in reply.raw
    values = dict(reply.headers)
    assert values["Unique-ID"] == values["variable_uuid"] == call.uuid
    assert values["Caller-Caller-ID-Number"] == "4915112345678"
    assert values["Channel-Caller-ID-Number"] == "4915112345678"
    assert values["Caller-Destination-Number"] == "7000"
    assert values["variable_current_application_data"] == "127.0.0.1%%3A%d%%20async%%20full" \
        % tom.address[1]
    for name in ("Answer-State", "Channel-Read-Codec-Name", "Channel-Read-Codec-Rate",
                 "Channel-State", "Channel-Call-State", "Channel-State-Number", "Channel-Name"):
        assert values[name] == captured.get(name)
    assert call.wait_connected(1)


def test_caller_id_name_is_url_encoded_so_injection_stays_inside_the_value(switch, tom):
    evil = "Eve\r\nContent-Type: command/reply\r\nReply-Text: +OK\r\n\r\nX: y"
    switch.place_call(caller_pcm(1), caller_id_name=evil)
    conn = tom.accept()
    conn.send("connect\n\n")
    reply = conn.frame()
    encoded = ("Eve%0D%0AContent-Type%3A%20command/reply%0D%0A"
               "Reply-Text%3A%20%2BOK%0D%0A%0D%0AX%3A%20y")
    assert reply.get("Caller-Caller-ID-Name") == encoded
    assert reply.get("Channel-Caller-ID-Name") == encoded
    names = reply.names()   # between Dialplan and Caller-ID-Number, as on the captured A leg
    assert names.index("Caller-Caller-ID-Name") == names.index("Caller-Dialplan") + 1
    assert reply.get("variable_caller_id") is None


def test_replies_are_the_captured_bytes(switch, tom):
    call = switch.place_call(caller_pcm(1), miss_park_event=True)   # no event in between
    conn = tom.accept()
    s1 = capture_chunks("02-s1-outbound.txt")
    conn.send("connect\n\n")
    conn.frame()
    for command, expected in (("myevents", s1[1]), ("linger", s1[2])):
        conn.send(command + "\n\n")
        assert conn.frame().raw == expected
    conn.send("myevents\n\n")
    assert conn.frame().get("Reply-Text") == "-ERR aready enabled."
    conn.send("linger 3\n\n")
    assert conn.frame().raw == capture_chunks("04-s3-outbound.txt")[2]
    conn.send("nolinger\n\n")
    assert conn.frame().get("Reply-Text") == "+OK will not linger"
    conn.send("event plain PLAYBACK_START PLAYBACK_STOP\n\n")
    assert conn.frame().raw == capture_chunks("07-s6-outbound.txt")[2]
    conn.send("event plain BACKGROUND_JOB\n\n")
    conn.frame()
    conn.send("bgapi status\n\n")   # from the outbound socket: Job-Owner-UUID passes myevents
    reply = conn.frame()
    job_uuid = reply.get("Job-UUID")
    assert reply.get("Reply-Text") == "+OK Job-UUID: " + job_uuid
    job = conn.event_until("BACKGROUND_JOB")[-1].event()
    assert job.names()[13:17] == ["Job-UUID", "Job-Owner-UUID", "Job-Command", "Content-Length"]
    assert job.get("Job-Owner-UUID") == call.uuid and job.body.startswith(b"UP ")
    conn.send("nosuchverb\n\n")
    assert conn.frame().raw == \
        b"Content-Type: command/reply\nReply-Text: -ERR command not found\n\n"
    conn.send("filter Unique-ID %s\n\n" % call.uuid)
    assert conn.frame().get("Reply-Text") == "+OK filter added. [Unique-ID]=[%s]" % call.uuid
    call.send_raw(b"Content-Type: text/x-anything\n\n")
    assert conn.frame().raw == b"Content-Type: text/x-anything\n\n"
    conn.send(ANSWER)
    assert conn.frame().raw == s1[3]
    conn.send("exit\n\n")
    expected = s1[-1].replace(S1_B.encode(), call.uuid.encode())
    assert conn.frame().raw + conn.frame().raw == expected
    assert conn.closed_within(1)
    assert call.wait_fell_back(1)   # TOM left a live call: the dialplan goes on


def test_first_command_other_than_connect_gets_no_reply(switch, tom):
    call = switch.place_call(caller_pcm(1))
    conn = tom.accept()
    conn.send("myevents\n\nconnect\n\n")
    assert conn.frame().get("Event-Name") == "CHANNEL_DATA"
    conn.send("myevents\n\n")   # the discarded first one still took effect
    assert reply_of(conn).get("Reply-Text") == "-ERR aready enabled."
    assert call.commands[:2] == ["myevents\n\n", "connect\n\n"]


def test_exit_before_connect_leaves_the_channel_parked_for_ever(switch, tom):
    call = switch.place_call(caller_pcm(1))
    conn = tom.accept()
    conn.send("exit\n\n")
    assert conn.frame().raw == goodbye_notice(call.uuid)
    assert conn.closed_within(1)
    call.wait_for(lambda: call.stuck, 1, "stuck")
    assert not call.fell_back and not call.ended


def test_silence_after_connect_times_out_like_the_first_command_wait(tom):
    fake = FakeSwitch(tom_address=tom.address, first_command_timeout_s=0.2)   # 25 s real
    fake.start()
    try:
        call = fake.place_call(caller_pcm(1))
        conn = tom.accept()
        assert conn.frame(1).raw == goodbye_notice(call.uuid)
        assert conn.closed_within(1)
        call.wait_for(lambda: call.stuck, 1, "stuck")
    finally:
        fake.stop()
    assert fake.leaks() == []


# -- events ------------------------------------------------------------------------------
def test_a_whole_call_has_the_captured_event_shapes(switch, tom, tmp_path):
    """Replays 07-s6 (myevents + PLAYBACK_*, answer, park, unicast, injected audio, a
    broadcast, the caller hangs up, no linger) and compares every event header by header."""
    call = switch.place_call(caller_pcm(3), caller_id_name="")
    conn = tom.accept()
    for command in ("connect", "myevents", "event plain PLAYBACK_START PLAYBACK_STOP"):
        conn.send(command + "\n\n")
        conn.frame()
    conn.send(ANSWER)
    frames = conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="answer")
    conn.send("sendmsg\ncall-command: execute\nexecute-app-name: park\n\n")
    frames += conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="park")
    receiver = udp_socket()
    local = free_udp_port()
    conn.send(unicast_cmd(local, receiver.getsockname()[1]))
    frames.append(conn.frame())
    receiver.recvfrom(1024)
    receiver.sendto(b"\x10\x00" * 160, ("127.0.0.1", local))
    call.wait_heard(320, 1)
    control = inbound(switch)
    wav = write_wav(tmp_path / "b.wav", 0.2)
    control.send("api uuid_broadcast %s %s aleg\n\n" % (call.uuid, wav))
    assert control.frame().body == b"+OK Message sent\n"
    frames += conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="playback")
    call.hangup()
    frames += conn.until(lambda f: f.content_type == "text/disconnect-notice")
    assert conn.closed_within(1)
    assert frames[-1].raw == goodbye_notice(call.uuid)
    captured = capture_frames("07-s6-outbound.txt")
    assert [f.content_type for f in frames[:-1]] == [f.content_type for f in captured[3:-1]]
    assert_same_shape(events(frames), events(captured))
    for frame in frames:   # outer layout: Content-Length first, exact length, blank line
        if frame.content_type == "text/event-plain":
            assert frame.names() == ["Content-Length", "Content-Type"]
            assert frame.body.endswith(b"\n\n")
    complete = events(frames)[-1]
    assert [v for k, v in complete.headers if k == "Hangup-Cause"] == ["NORMAL_CLEARING"] * 2
    assert call.wait_ended(1) and call.hangup_complete


def test_dtmf_events_are_20_ms_apart_and_shaped_as_captured(switch, tom):
    call, conn = answered(switch, tom, playback_events=False)
    call.send_dtmf("12#")
    frames = conn.event_until("DTMF", DTMF_Digit="%23")
    dtmf = [f for f in events(frames) if f.get("Event-Name") == "DTMF"]
    captured = [e for e in events(capture_frames("02-s1-outbound.txt"))
                if e.get("Event-Name") == "DTMF"]
    assert_same_shape(dtmf, [captured[0], captured[1], captured[4]])
    stamps = [int(e.get("Event-Date-Timestamp")) for e in dtmf]
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [20000, 20000]


def test_channel_park_follows_connect_and_can_be_missed(switch, tom):
    switch.place_call(caller_pcm(1))
    conn = tom.accept()
    for command in ("connect", "myevents"):
        conn.send(command + "\n\n")
        conn.frame()
    conn.send(ANSWER)
    frames = conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="answer")
    assert [e.get("Event-Name") for e in events(frames)][0] == "CHANNEL_PARK"   # 6 of 7 runs
    call = switch.place_call(caller_pcm(1), miss_park_event=True)
    second = tom.accept()
    for command in ("connect", "myevents"):
        second.send(command + "\n\n")
        second.frame()
    second.send(ANSWER)
    frames = second.event_until("CHANNEL_EXECUTE_COMPLETE", Application="answer")
    assert "CHANNEL_PARK" not in [e.get("Event-Name") for e in events(frames)]   # like s3
    assert call.answered


# -- unicast -----------------------------------------------------------------------------
def test_unicast_is_320_byte_frames_at_50_per_s_carrying_the_caller_live(switch, tom):
    call, conn = answered(switch, tom, audio_s=4)
    receiver = udp_socket()
    local = free_udp_port()
    conn.send(unicast_cmd(local, receiver.getsockname()[1]))
    assert conn.frame().get("Reply-Text") == "+OK"
    packets = []
    with gevent.Timeout(3):
        while len(packets) < 30:
            data, source = receiver.recvfrom(4096)
            packets.append((time.monotonic(), data, source))
    assert {len(d) for _, d, _ in packets} == {320}
    assert {s for _, _, s in packets} == {("127.0.0.1", local)}
    stream = b"".join(d for _, d, _ in packets)
    pcm = call.caller.pcm
    offset = pcm.find(stream[:320])
    assert offset >= 0 and offset % 320 == 0
    assert stream == pcm[offset:offset + len(stream)]        # bit-exact and contiguous
    live = call.audio_position_s - (time.monotonic() - packets[0][0])
    assert abs(offset / 16000 + 0.02 - live) < 0.045        # live position, no backlog
    span = packets[-1][0] - packets[0][0]
    assert 29 * 0.02 - 0.03 < span < 29 * 0.02 + 0.03       # 50 packets a second
    assert call.unicast_active


def test_audio_sent_to_local_port_is_heard_at_once(switch, tom):
    call, conn = answered(switch, tom)
    local = free_udp_port()
    sender = udp_socket()
    conn.send(unicast_cmd(local, sender.getsockname()[1]))
    conn.frame()
    call.wait_unicast(1)   # bound by the session thread, one tick after the +OK
    frames = [bytes([n]) * 320 for n in range(10)]
    for frame in frames:          # no pacing needed: FreeSWITCH writes what arrives
        sender.sendto(frame, ("127.0.0.1", local))
    assert call.wait_heard(3200, 1)
    assert call.heard_pcm() == b"".join(frames)


def test_cng_frames_are_inserted_and_shift_the_audio(switch, tom):
    call, conn = answered(switch, tom, cng_frames={3})
    receiver = udp_socket()
    conn.send(unicast_cmd(free_udp_port(), receiver.getsockname()[1]))
    packets = [receiver.recvfrom(4096)[0] for _ in range(8)]
    assert packets[3] == b"\xff" * 320
    pcm = call.caller.pcm
    start = pcm.find(packets[0])
    assert b"".join(packets[:3]) == pcm[start:start + 960]
    assert b"".join(packets[4:]) == pcm[start + 960:start + 960 + 4 * 320]


def test_a_broadcast_stops_unicast_for_good(switch, tom, tmp_path):
    call, conn = answered(switch, tom)
    receiver = udp_socket()
    local = free_udp_port()
    conn.send(unicast_cmd(local, receiver.getsockname()[1]))
    conn.frame()
    receiver.recvfrom(4096)
    wav = write_wav(tmp_path / "prompt.wav", 0.3)
    control = inbound(switch)
    sent_at, sent_wall = time.monotonic(), time.time()
    control.send("api uuid_broadcast %s {prompt_id=p1,turn=2}%s aleg\n\n" % (call.uuid, wav))
    assert control.frame().body == b"+OK Message sent\n"
    last = sent_at
    receiver.settimeout(0.1)
    try:
        while True:
            receiver.recvfrom(4096)
            last = time.monotonic()
    except socket.timeout:
        pass
    assert last - sent_at < 0.04                                  # 8-17 ms in the captures
    frames = conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="playback")
    found = {e.get("Event-Name"): e for e in events(frames)}
    started = int(found["PLAYBACK_START"].get("Event-Date-Timestamp")) / 1e6 - sent_wall
    assert 0.08 <= started <= 0.16                             # 115-135 ms in the captures
    start, stop = found["PLAYBACK_START"], found["PLAYBACK_STOP"]
    assert start.get("prompt_id") == stop.get("prompt_id") == "p1" and stop.get("turn") == "2"
    assert stop.get("Playback-Status") == "done"
    assert stop.get("Playback-File-Path") == "%7Bprompt_id%3Dp1,turn%3D2%7D" + wav
    assert stop.get("variable_playback_ms") == "300"
    assert found["CHANNEL_EXECUTE_COMPLETE"].get("Application-Response") == "FILE%20PLAYED"
    assert call.played == [{"path": wav, "tags": {"prompt_id": "p1", "turn": "2"},
                            "status": "done"}]
    conn.send(unicast_cmd(free_udp_port(), receiver.getsockname()[1]))   # CAPTURES 6.3
    assert conn.frame().get("Reply-Text") == "+OK"
    with pytest.raises(socket.timeout):
        receiver.recvfrom(4096)
    assert not call.unicast_active
    assert any("no packets after a playback" in e for e in call.errors_logged)


def test_playback_before_the_first_unicast_is_harmless(switch, tom, tmp_path):
    call, conn = answered(switch, tom)
    conn.send("sendmsg\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: %s\n"
              "event-lock: true\nevent-uuid: greet-1\n\n" % write_wav(tmp_path / "g.wav", 0.1))
    assert conn.frame().get("Reply-Text") == "+OK"
    frames = conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="playback")
    assert [e.get("Application-UUID") for e in events(frames)
            if e.get("Event-Name").startswith("CHANNEL_EXECUTE")] == ["greet-1", "greet-1"]
    receiver = udp_socket()
    conn.send(unicast_cmd(free_udp_port(), receiver.getsockname()[1]))
    receiver.settimeout(1)
    assert len(receiver.recvfrom(4096)[0]) == 320                 # 10-a3
    assert call.unicast_active


def test_uuid_break_stops_the_playback_as_captured(switch, tom, tmp_path):
    call, conn = answered(switch, tom)
    receiver = udp_socket()
    local = free_udp_port()
    conn.send(unicast_cmd(local, receiver.getsockname()[1]))
    conn.frame()
    receiver.recvfrom(4096)
    conn.send("api uuid_broadcast %s %s aleg\n\n" % (call.uuid, write_wav(tmp_path / "l.wav", 5)))
    conn.frame()
    conn.event_until("PLAYBACK_START")
    receiver.setblocking(False)
    try:
        while True:
            receiver.recvfrom(4096)   # what was sent before the playback began
    except BlockingIOError:
        pass
    receiver.setblocking(True)
    receiver.sendto(b"\x02\x00" * 160, ("127.0.0.1", local))   # the receive side keeps going
    assert call.wait_heard(320, 1)
    conn.send("api uuid_break %s all\n\n" % call.uuid)
    assert conn.frame().raw == b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n"
    frames = conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="playback", timeout_s=1)
    captured = [e for e in events(capture_frames("03-s2-outbound.txt"))
                if e.get("Event-Name") in ("PLAYBACK_STOP", "CHANNEL_EXECUTE_COMPLETE")][2:4]
    assert_same_shape(events(frames), captured)
    assert call.played[0]["status"] == "break"
    receiver.settimeout(0.1)
    with pytest.raises(socket.timeout):
        receiver.recvfrom(4096)


def test_a_missing_file_gives_file_not_found_and_no_playback_events(switch, tom, tmp_path):
    call, conn = answered(switch, tom)
    conn.send("api uuid_broadcast %s %s\n\n" % (call.uuid, tmp_path / "nope.wav"))
    conn.frame()
    frames = conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="playback")
    assert [e.get("Event-Name") for e in events(frames)][-2:] == \
        ["CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"]
    assert events(frames)[-1].get("Application-Response") == "FILE%20NOT%20FOUND"
    assert call.played[0]["status"] == "not found"


def test_unicast_port_conflicts_and_unicast_before_answer_are_logged(switch, tom):
    first, conn = answered(switch, tom)
    port = free_udp_port()
    conn.send(unicast_cmd(port, 9))
    conn.frame()
    second, other = answered(switch, tom)
    other.send(unicast_cmd(port, 9))
    assert other.frame().get("Reply-Text") == "+OK"
    second.wait_for(lambda: second.errors_logged, 1, "error")
    assert second.errors_logged == ["Failure creating unicast connection"]
    third = switch.place_call(caller_pcm(1))
    early = tom.accept()
    early.send("connect\n\n")
    early.frame()
    early.send(unicast_cmd(free_udp_port(), 9))
    early.frame()
    third.wait_for(lambda: third.errors_logged, 1, "error")
    assert "before answer" in third.errors_logged[0]


def test_park_app_is_acknowledged_and_logged_as_captured(switch, tom):
    call, conn = answered(switch, tom, playback_events=False)
    conn.send("sendmsg\ncall-command: execute\nexecute-app-name: park\n\n")
    frames = conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="park")
    assert frames[0].get("Reply-Text") == "+OK"
    assert call.errors_logged == [
        "switch_ivr.c:975 Cannot park channels that are under control already."]


def test_unicast_asked_during_a_locked_broadcast_starts_after_it(switch, tom, tmp_path):
    """10-a2: no packets while the greeting plays, then the stream runs normally."""
    call, conn = answered(switch, tom)
    wav = write_wav(tmp_path / "g.wav", 0.3)
    conn.send("api uuid_broadcast %s %s aleg\n\n" % (call.uuid, wav))
    conn.frame()
    conn.event_until("PLAYBACK_START")
    receiver = udp_socket()
    conn.send(unicast_cmd(free_udp_port(), receiver.getsockname()[1]))
    conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="playback")
    finished = time.monotonic()
    receiver.settimeout(1)
    assert len(receiver.recvfrom(4096)[0]) == 320
    assert time.monotonic() - finished < 0.1
    assert call.unicast_active


def test_transfer_app_and_refused_connect(switch, tom):
    call, conn = answered(switch, tom, playback_events=False)
    conn.send("sendmsg\ncall-command: execute\nexecute-app-name: transfer\n"
              "execute-app-arg: 7001 XML default\n\n")
    frames = conn.event_until("CHANNEL_PARK")
    assert [(e.get("Event-Name"), e.get("Application")) for e in events(frames)] == [
        ("CHANNEL_EXECUTE", "transfer"), ("CHANNEL_EXECUTE_COMPLETE", "transfer"),
        ("CHANNEL_UNPARK", None), ("CHANNEL_EXECUTE_COMPLETE", "socket"),
        ("CHANNEL_STATE", None), ("CHANNEL_STATE", None), ("CHANNEL_EXECUTE", "answer"),
        ("CHANNEL_EXECUTE_COMPLETE", "answer"), ("CHANNEL_EXECUTE", "park"),
        ("CHANNEL_PARK", None)]
    assert call.transferred_to == "7001"
    nobody = FakeSwitch(tom_address=("127.0.0.1", free_udp_port()))   # nothing listens there
    nobody.start()
    try:
        lost = nobody.place_call(caller_pcm(1))
        assert lost.wait_ended(2) and lost.fell_back and not lost.connected
    finally:
        nobody.stop()
    assert nobody.leaks() == []


def test_json_events_have_the_captured_keys(switch):
    conn = inbound(switch)
    conn.send("event json BACKGROUND_JOB\n\n")
    assert conn.frame().get("Reply-Text") == "+OK event listener enabled json"
    conn.send("bgapi status\n\n")
    job = conn.until(lambda f: f.content_type == "text/event-json")[-1]
    captured = [f for f in capture_frames("01-inbound-json.txt")
                if f.content_type == "text/event-json"][0]
    assert job.names() == captured.names() == ["Content-Length", "Content-Type"]
    fake_keys = list(json.loads(job.body, object_pairs_hook=lambda p: dict(p)).keys())
    real_keys = list(json.loads(captured.body).keys())
    assert fake_keys == real_keys
    assert json.loads(job.body)["_body"].startswith("UP 0 years")


# -- hang-up, linger, fallback, transfer -------------------------------------------------
def test_hangup_with_linger_for_ever_then_exit(switch, tom):
    call, conn = answered(switch, tom, playback_events=False, linger="linger")
    call.hangup()
    frames = conn.until(lambda f: f.content_type == "text/disconnect-notice")
    names = [e.get("Event-Name") for e in events(frames)]
    assert names[-6:] == ["CHANNEL_HANGUP", "CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE",
                          "CHANNEL_STATE", "CHANNEL_STATE", "CHANNEL_HANGUP_COMPLETE"]
    s1 = capture_frames("02-s1-outbound.txt")
    assert frames[-1].raw == s1[-3].raw.replace(S1_B.encode(), call.uuid.encode())
    assert conn.quiet_for(0.3) and not conn.eof                  # lingering, socket open
    assert call.hangup_complete and not call.ended
    conn.send("exit\n\n")
    tail = conn.frame().raw + conn.frame().raw
    assert tail == (s1[-2].raw + s1[-1].raw).replace(S1_B.encode(), call.uuid.encode())
    assert conn.closed_within(1)
    assert call.wait_ended(1) and not call.fell_back


def test_linger_n_closes_after_n_seconds(switch, tom):
    call, conn = answered(switch, tom, playback_events=False, linger="linger 1")
    call.hangup("USER_BUSY")
    notice = conn.until(lambda f: f.content_type == "text/disconnect-notice")[-1]
    noticed = time.monotonic()
    assert notice.get("Linger-Time") == "1" and notice.get("Content-Disposition") == "linger"
    final = conn.frame(3)
    assert 1.0 <= time.monotonic() - noticed < 1.6                  # 3.2 s for linger 3 in s3
    assert final.get("Content-Disposition") == "disconnect" and final.body == GOODBYE
    assert conn.closed_within(1)
    assert call.hangup_cause == "USER_BUSY"


def test_tom_hangs_up_without_linger(switch, tom):
    call, conn = answered(switch, tom, playback_events=False)
    conn.send("sendmsg\ncall-command: hangup\nhangup-cause: CALL_REJECTED\n\n")
    frames = conn.until(lambda f: f.content_type == "text/disconnect-notice")
    complete = events(frames)[-1]
    assert complete.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE"
    assert complete.get("variable_hangup_cause_q850") == "21"
    assert frames[-1].get("Content-Disposition") == "disconnect"
    assert conn.closed_within(1)
    assert call.wait_ended(1) and call.hangup_cause == "CALL_REJECTED"
    assert switch.find_call(call.uuid) is None


def test_closing_the_socket_mid_call_falls_back_to_the_dialplan(switch, tom):
    call, conn = answered(switch, tom)
    control = inbound(switch, "CHANNEL_EXECUTE CHANNEL_PARK")
    conn.close()
    assert call.wait_ended(1) and call.fell_back and call.transferred_to is None
    frames = control.event_until("CHANNEL_PARK")
    assert [(e.get("Event-Name"), e.get("Application")) for e in events(frames)] == [
        ("CHANNEL_EXECUTE", "transfer"), ("CHANNEL_EXECUTE", "answer"),
        ("CHANNEL_EXECUTE", "park"), ("CHANNEL_PARK", None)]
    assert events(frames)[-1].get("Caller-Destination-Number") == "operator"


def test_transfer_keeps_the_socket_open_and_matches_the_capture(switch, tom):
    call = switch.place_call(caller_pcm(2), caller_id_number="0000000000", caller_id_name="",
                             destination="7002")
    conn = tom.accept()
    for command in ("connect", "myevents"):
        conn.send(command + "\n\n")
        conn.frame()
    conn.send(ANSWER)
    conn.event_until("CHANNEL_EXECUTE_COMPLETE", Application="answer")
    conn.send("api uuid_transfer %s 7001 XML default\n\n" % call.uuid)
    assert conn.frame().body == b"+OK\n"
    frames = conn.event_until("CHANNEL_PARK")
    captured = events(capture_frames("11-transfer-outbound.txt"))[4:]
    assert_same_shape(events(frames), captured, drop={"variable_origination_caller_id_number"})
    assert call.transferred_to == "7001"
    assert conn.quiet_for(0.2) and not conn.eof
    conn.send("exit\n\n")
    assert conn.closed_within(1)
    assert call.wait_ended(1) and not call.fell_back


def test_displace_then_injected_audio_hangs_the_channel_like_the_captures(switch, tom, tmp_path):
    call, conn = answered(switch, tom)
    sender = udp_socket()
    local = free_udp_port()
    conn.send(unicast_cmd(local, sender.getsockname()[1]))
    conn.frame()
    sender.recvfrom(4096)
    wav = write_wav(tmp_path / "d.wav", 1)
    conn.send("api uuid_displace %s start %s 0 mux\n\n" % (call.uuid, wav))
    assert conn.frame().body == b"+OK Success\n"
    sender.sendto(b"\x00" * 320, ("127.0.0.1", local))
    call.wait_heard(320, 1)
    conn.send("api uuid_displace %s stop %s\n\n" % (call.uuid, tmp_path / "d.wav"))
    assert conn.frame().body == b"+OK Success\n"
    call.hangup()
    frames = conn.until(lambda f: f.content_type == "text/disconnect-notice")
    captured = capture_frames("08-s7-outbound.txt")
    tail = ["CHANNEL_HANGUP", "CHANNEL_UNPARK"]   # and no CHANNEL_HANGUP_COMPLETE
    assert [e.get("Event-Name") for e in events(frames)][-2:] == tail
    assert [e.get("Event-Name") for e in events(captured)][-2:] == tail
    assert conn.closed_within(1)
    assert call.displace_used and call.session_hung and not call.hangup_complete
    assert switch.find_call(call.uuid) is call   # `show channels` keeps listing it


def test_myevents_alone_has_no_playback_events_and_queued_hangup_waits(switch, tom, tmp_path):
    """s1: myevents gives only CHANNEL_EXECUTE/_COMPLETE for a broadcast; its event-lock
    keeps a queued sendmsg hangup waiting until the playback ends (ESL-FACTS 4.1)."""
    call, conn = answered(switch, tom, playback_events=False)
    conn.send("api uuid_broadcast %s %s\n\n" % (call.uuid, write_wav(tmp_path / "p.wav", 0.3)))
    conn.frame()
    conn.send("sendmsg\ncall-command: hangup\n\n")
    frames = conn.event_until("CHANNEL_HANGUP")
    assert [e.get("Event-Name") for e in events(frames)] == [
        "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP"]
    assert call.played[0]["status"] == "done"


def test_hangup_nested_in_an_unlocked_playback_ends_it(switch, tom, tmp_path):
    call, conn = answered(switch, tom)
    conn.send("sendmsg\ncall-command: execute\nexecute-app-name: playback\n"
              "execute-app-arg: %s\n\n" % write_wav(tmp_path / "long.wav", 5))
    conn.event_until("PLAYBACK_START")
    conn.send("sendmsg\ncall-command: hangup\n\n")
    frames = conn.until(lambda f: f.content_type == "text/disconnect-notice")
    found = events(frames)
    assert [e.get("Event-Name") for e in found] == [
        "CHANNEL_HANGUP", "PLAYBACK_STOP", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_UNPARK",
        "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_STATE", "CHANNEL_STATE", "CHANNEL_HANGUP_COMPLETE"]
    assert found[1].get("Playback-Status") == "done"              # done, even on hang-up
    assert found[2].get("Application-Response") == "PLAYBACK%20ERROR"
    assert call.wait_ended(1)


def test_tom_hangs_up_with_the_hangup_app_or_uuid_kill(switch, tom):
    call, conn = answered(switch, tom, playback_events=False)
    conn.send("sendmsg\ncall-command: execute\nexecute-app-name: hangup\n"
              "execute-app-arg: USER_BUSY\n\n")
    frames = conn.until(lambda f: f.content_type == "text/disconnect-notice")
    assert [(e.get("Event-Name"), e.get("Application")) for e in events(frames)] == [
        ("CHANNEL_EXECUTE", "hangup"), ("CHANNEL_HANGUP", None),
        ("CHANNEL_EXECUTE_COMPLETE", "hangup"), ("CHANNEL_UNPARK", None),
        ("CHANNEL_EXECUTE_COMPLETE", "socket"), ("CHANNEL_STATE", None),
        ("CHANNEL_STATE", None), ("CHANNEL_HANGUP_COMPLETE", None)]
    assert call.hangup_cause == "USER_BUSY"
    other, second = answered(switch, tom, playback_events=False)
    second.send("api uuid_kill %s\n\n" % other.uuid)
    assert second.frame().raw == b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n"
    frames = second.until(lambda f: f.content_type == "text/disconnect-notice")
    assert events(frames)[0].get("Event-Name") == "CHANNEL_HANGUP"
    assert other.wait_ended(1) and other.hangup_cause == "NORMAL_CLEARING"


def test_dtmf_api_and_filters_on_an_inbound_connection(switch, tom):
    call, _ = answered(switch, tom)
    other, _ = answered(switch, tom)
    control = inbound(switch, "DTMF CHANNEL_HANGUP")
    control.send("filter Unique-ID %s\n\n" % call.uuid)
    assert control.frame().get("Reply-Text") == "+OK filter added. [Unique-ID]=[%s]" % call.uuid
    control.send("api uuid_send_dtmf %s 9\n\n" % call.uuid)   # towards the caller: no event
    assert control.frame().body == ("+OK %s sent DTMF 9.\n" % call.uuid).encode()
    assert call.dtmf_to_caller == ["9"]
    other.send_dtmf("5")
    control.send("api uuid_send_dtmf %s 12\n\n" % call.a_uuid)  # from the caller: events on B
    assert reply_of(control).body == ("+OK %s sent DTMF 12.\n" % call.a_uuid).encode()
    frames = control.event_until("DTMF", DTMF_Digit="2")
    control.send("api uuid_kill %s\n\n" % other.a_uuid)
    control.send("api uuid_kill %s\n\n" % call.a_uuid)
    frames += control.event_until("CHANNEL_HANGUP")
    found = events(frames)
    assert [(e.get("Event-Name"), e.get("DTMF-Digit")) for e in found] == [
        ("DTMF", "1"), ("DTMF", "2"), ("CHANNEL_HANGUP", None)]
    assert {e.get("Unique-ID") for e in found} == {call.uuid}
    assert other.wait_hung_up(1)


# -- inbound ESL -------------------------------------------------------------------------
def inbound(switch, events_list: str = "") -> Conn:
    conn = connect_inbound(switch.esl_port)
    conn.frame()
    conn.send("auth ClueCon\n\n")
    conn.frame()
    if events_list:
        conn.send("event plain %s\n\n" % events_list)
        conn.frame()
    return conn


def test_inbound_session_matches_the_capture(switch, tom):
    captured = capture_frames("01-inbound-plain.txt")
    conn = connect_inbound(switch.esl_port)
    assert conn.frame().raw == captured[0].raw == b"Content-Type: auth/request\n\n"
    conn.send("api status\n\n")
    assert conn.frame().get("Reply-Text") == "-ERR command not found"   # before auth
    conn.send("auth ClueCon\n\n")
    assert conn.frame().raw == captured[1].raw
    conn.send("api status\n\n")
    status = conn.frame()
    lines = status.body.decode().split("\n")
    assert status.names() == ["Content-Type", "Content-Length"]
    assert lines[0].startswith("UP 0 years, 0 days, 0 hours, 0 minutes, ")
    assert lines[1:] == captured[2].body.decode().split("\n")[1:2] + lines[2:]
    assert lines[-2:] == ["Current Stack Size/Max 240K/8192K", ""]
    conn.send("event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_PARK CHANNEL_HANGUP_COMPLETE "
              "PLAYBACK_START PLAYBACK_STOP DTMF BACKGROUND_JOB\n\n")
    assert conn.frame().raw == captured[3].raw
    conn.send("bgapi status\nJob-UUID: 11111111-2222-3333-4444-555555555555\n\n")
    reply, job = conn.frame(), conn.frame()
    assert reply.raw == captured[6].raw
    assert job.event().names() == captured[7].event().names()
    assert job.event().get("Job-UUID") == "11111111-2222-3333-4444-555555555555"
    assert job.event().body.startswith(b"UP ")
    assert switch.commands[:2] == ["api status\n\n", "auth ClueCon\n\n"]
    for command, index in (("api nosuchcommand_xyz", 8), ("api show channels as json", 11),
                           ("nosuchverb", 12)):
        conn.send(command + "\n\n")
        assert conn.frame().raw == captured[index].raw
    conn.send("bgapi nosuchcommand_xyz\n\n")
    conn.frame()
    assert conn.frame().event().body == b"-ERR nosuchcommand_xyz Command not found!\n"
    call, _ = answered(switch, tom, destination="7001")
    conn.send("api show channels as json\n\n")
    frames = conn.until(lambda f: f.content_type == "api/response")
    body = frames[-1].body.decode()
    created = [e for e in events(frames) if e.get("Event-Name") == "CHANNEL_CREATE"]
    assert_same_shape(created, [e for e in events(captured)
                                if e.get("Channel-Name") == "loopback/7001-b"][:1])
    assert body.startswith('{"row_count":1,"rows":[{"uuid":"%s","direction":"inbound"' % call.uuid)
    assert not body.endswith("\n")
    conn.send("exit\n\n")
    frames = conn.until(lambda f: f.content_type == "text/disconnect-notice")
    assert frames[-2].raw + frames[-1].raw == captured[-2].raw + captured[-1].raw
    assert conn.closed_within(1)


def test_inbound_bad_password_is_refused(switch):
    conn = connect_inbound(switch.esl_port)
    conn.frame()
    conn.send("auth wrong\n\n")
    assert conn.frame().get("Reply-Text") == "-ERR invalid"
    assert conn.frame().body == GOODBYE
    assert conn.closed_within(1)


def test_api_errors_for_unknown_uuids(switch):
    conn = inbound(switch)
    for command, body in (("uuid_broadcast nope /x.wav aleg", "-ERR invalid uuid\n"),
                          ("uuid_kill nope", "-ERR No such channel!\n"),
                          ("uuid_break nope", "-ERR No such channel!\n"),
                          ("uuid_transfer nope 7001", "-ERR No such channel!\n"),
                          ("uuid_send_dtmf nope 1", "-ERR Cannot locate session!\n")):
        conn.send("api %s\n\n" % command)
        assert conn.frame().body.decode() == body


def test_bgapi_originate_makes_a_synthetic_call(switch, tom, tmp_path):
    wav = write_wav(tmp_path / "caller.wav", 0.5)
    conn = inbound(switch, "BACKGROUND_JOB")
    conn.send("bgapi originate {origination_uuid=aaaaaaaa-0000-4000-8000-000000000001,"
              "origination_caller_id_number=4930123}loopback/7000/default &playback(%s)\n\n" % wav)
    assert conn.frame().get("Reply-Text").startswith("+OK Job-UUID: ")
    tom_side = tom.accept()
    tom_side.send("connect\n\n")
    data = tom_side.frame()
    assert data.get("Caller-Caller-ID-Number") == "4930123"
    assert data.get("variable_origination_uuid") == "aaaaaaaa-0000-4000-8000-000000000001"
    tom_side.send(ANSWER)
    job = conn.event_until("BACKGROUND_JOB")[-1].event()
    assert job.body == b"+OK aaaaaaaa-0000-4000-8000-000000000001\n"
    assert job.get("Job-Command") == "originate"
    call = switch.calls[-1]
    assert call.caller.pcm == b"\x01\x00" * 4000
    # The originated leg's application returns when the WAV has played: FreeSWITCH hangs up.
    assert not call.hung_up
    assert call.wait_hung_up(timeout_s=5) and call.hangup_cause == "NORMAL_CLEARING"
    assert call.audio_position_s >= 0.5


# -- segmentation and life cycle ---------------------------------------------------------
def test_segmented_writes_arrive_in_pieces_but_parse_the_same(tom):
    fake = FakeSwitch(tom_address=tom.address, segment_writes=True, segment_max_bytes=16)
    fake.start()
    try:
        call = fake.place_call(caller_pcm(1))
        conn = tom.accept()
        conn.send("connect\n\n")
        reply = conn.frame()
        assert reply.get("Unique-ID") == call.uuid
        assert len(conn.chunks) > 10 and max(len(c) for c in conn.chunks) <= 16
    finally:
        fake.stop()
    assert fake.leaks() == []


def test_stop_kills_everything_and_start_reuses_the_port(tom):
    fake = FakeSwitch(tom_address=tom.address)
    fake.start()
    port = fake.esl_port
    call = fake.place_call(caller_pcm(2))
    conn = tom.accept()
    conn.send("connect\n\nmyevents\n\n" + ANSWER)
    conn.event_until("CHANNEL_EXECUTE_COMPLETE")
    receiver = udp_socket()
    conn.send(unicast_cmd(free_udp_port(), receiver.getsockname()[1]))
    receiver.recvfrom(4096)
    control = inbound(fake)
    fake.stop()
    assert conn.closed_within(1) and control.closed_within(1)
    assert call.ended and fake.leaks() == []
    fake.start()
    assert fake.esl_port == port
    again = inbound(fake)
    again.send("api show calls as json\n\n")
    assert again.frame().body == b'{"row_count": 0}\n'
    fake.stop()
    assert fake.leaks() == []
