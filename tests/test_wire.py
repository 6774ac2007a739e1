"""The ESL parser against the bytes a real FreeSWITCH sent (tests/data/freeswitch/)."""

import random

import gevent

import pytest

from tests.captures import received
from tomctl.errors import EslProtocolError
from tomctl.telephony import wire

CAPTURES = ["02-s1-outbound.txt", "04-s3-outbound.txt", "11-transfer-outbound.txt",
            "01-inbound-plain.txt"]


def frames_of(chunks):
    parser = wire.FrameParser()
    frames = [frame for chunk in chunks for frame in parser.feed(chunk)]
    assert parser.pending_bytes == 0
    return frames


@pytest.mark.parametrize("capture", CAPTURES)
def test_any_segmentation_gives_the_same_frames(capture):
    chunks = received(capture)
    as_captured = frames_of(chunks)
    stream = b"".join(chunks)
    rng = random.Random(capture)
    cuts = sorted(rng.sample(range(1, len(stream)), min(400, len(stream) // 4)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    assert as_captured
    assert frames_of(pieces) == as_captured


def test_byte_by_byte():
    stream = b"".join(received("02-s1-outbound.txt"))[:30000]
    whole = list(wire.FrameParser().feed(stream))
    parser = wire.FrameParser()
    single = []
    for i in range(len(stream)):
        single += parser.feed(stream[i:i + 1])
        if i % 1000 == 0:
            gevent.sleep(0)   # each byte is a recv of its own on a socket: the hub runs between
    assert single == whole


def test_connect_reply_is_the_channel_data_with_the_reply_last():
    reply = frames_of(received("02-s1-outbound.txt"))[0]
    assert reply.content_type == "command/reply"
    assert reply.get("Reply-Text") == "+OK\n"          # sent URL-encoded: %2BOK%0A
    assert list(reply.headers)[-4:] == ["Content-Type", "Reply-Text", "Socket-Mode", "Control"]
    assert wire.check_uuid(reply.get("Unique-ID"))
    assert reply.get("Caller-Caller-ID-Number") == "4915112345678"
    assert reply.get("Event-Date-Local") == "2026-11-23 22:54:34"


def test_events_carry_their_names_and_decoded_values():
    events = [wire.parse_event(f) for f in frames_of(received("02-s1-outbound.txt"))
              if f.content_type == "text/event-plain"]
    names = [ev.name for ev in events]
    assert "CHANNEL_ANSWER" in names and "DTMF" in names
    assert [ev.get("DTMF-Digit") for ev in events if ev.name == "DTMF"] == list("1234#")
    execute = next(ev for ev in events if ev.name == "CHANNEL_EXECUTE_COMPLETE"
                   and ev.get("Application") == "socket")
    assert execute.get("Application-Data") == "127.0.0.1:8084 async full"
    hangup = next(ev for ev in events if ev.name == "CHANNEL_HANGUP_COMPLETE")
    assert hangup.get("Hangup-Cause") == "NORMAL_CLEARING"


def test_linger_and_disconnect_notices():
    frames = frames_of(received("02-s1-outbound.txt"))
    notices = [f for f in frames if f.content_type == "text/disconnect-notice"]
    assert [f.get("Content-Disposition") for f in notices] == ["linger", "disconnect"]
    assert notices[0].get("Linger-Time") == "-1"
    assert notices[1].body.startswith(b"Disconnected, goodbye.") and len(notices[1].body) == 67


def test_background_job_body_is_the_api_output():
    frames = frames_of(received("01-inbound-plain.txt"))
    assert frames[0].content_type == "auth/request"
    jobs = [wire.parse_event(f) for f in frames if f.content_type == "text/event-plain"
            and wire.parse_event(f).name == "BACKGROUND_JOB"]
    assert jobs and jobs[0].body.startswith("UP ")
    assert jobs[0].get("Job-Command") == "status"
    api = next(f for f in frames if f.content_type == "api/response")
    assert api.body.startswith(b"UP ")


def test_an_encoded_newline_cannot_forge_a_header():
    block = b"Event-Name: CHANNEL_DATA\nCaller-Caller-ID-Name: Eve%0A%0Aapi%20uuid_kill%0AX: y\n"
    headers = wire.parse_header_block(block)
    assert headers["Caller-Caller-ID-Name"] == "Eve\n\napi uuid_kill\nX: y"
    assert "X" not in headers and len(headers) == 2


@pytest.mark.parametrize("data", [
    b"Content-Type: api/response\nContent-Length: twelve\n\n",
    b"Content-Type: api/response\nContent-Length: 99999999999\n\n",
    b"this line has no colon\n\n",
    b"Content-Type: api/resp\xffonse\n\n",
])
def test_malformed_frames_are_refused(data):
    with pytest.raises(EslProtocolError):
        list(wire.FrameParser().feed(data))


def test_an_endless_header_block_is_refused():
    parser = wire.FrameParser()
    with pytest.raises(EslProtocolError):
        for _ in range(300):
            list(parser.feed(b"X-Padding: " + b"a" * 1000 + b"\n"))


def test_a_truncated_frame_waits_for_the_rest():
    parser = wire.FrameParser()
    assert list(parser.feed(b"Content-Type: api/response\nContent-Length: 10\n\n+OK")) == []
    assert next(parser.feed(b" done\n\n")).body == b"+OK done\n\n"


def test_frames_before_a_malformed_one_are_not_lost():
    frames = wire.FrameParser().feed(b"Content-Type: command/reply\nReply-Text: +OK\n\n"
                                     b"no colon here\n\n")
    assert next(frames).get("Reply-Text") == "+OK"
    with pytest.raises(EslProtocolError):
        next(frames)


@pytest.mark.parametrize("build", [
    lambda: wire.api("uuid_broadcast", "x\nexit", "/tmp/a.wav"),
    lambda: wire.api("uuid_transfer", "0f0e0d0c-0b0a-0908-0706-050403020100", "1000\r\napi"),
    lambda: wire.command("event plain DTMF\n\nexit"),
    lambda: wire.api("uuid kill", "x"),
    lambda: wire.execute("playback", "a", "not-a-uuid"),
    lambda: wire.hangup("NORMAL CLEARING"),
    lambda: wire.unicast("127.0.0.1\n", 4000, "127.0.0.1", 4001),
])
def test_commands_refuse_control_characters_and_bad_values(build):
    with pytest.raises(ValueError):
        build()


def test_a_command_is_one_block():
    data = wire.execute("answer", "", "0f0e0d0c-0b0a-0908-0706-050403020100")
    assert data.endswith(b"\n\n") and data.count(b"\n\n") == 1
    assert data.startswith(b"sendmsg\ncall-command: execute\nexecute-app-name: answer\n")


def test_spool_paths_stay_inside_their_directory(tmp_path):
    assert wire.spool_path(str(tmp_path), "goodbye-1.wav") == str(tmp_path / "goodbye-1.wav")
    for name in ("../etc/passwd", "/etc/passwd", "a b.wav", "x{y}.wav", "sub/../../z.wav"):
        with pytest.raises(ValueError):
            wire.spool_path(str(tmp_path), name)
