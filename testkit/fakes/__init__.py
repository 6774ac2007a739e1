"""A test-only FreeSWITCH, faithful to captures of a real one (tests/data/freeswitch/).

    switch = FakeSwitch(tom_address=("127.0.0.1", port))
    switch.start()                      # inbound ESL on 127.0.0.1:switch.esl_port
    call = switch.place_call(caller_pcm)  # `socket <tom> async full`, then the fallback
    ...
    switch.stop()                       # FreeSWITCH dies

Modules: wire (bytes on the wire), channel (channel data and event headers), session (the
park loop), apps (answer, park, playback, hangup, transfer), media (unicast UDP, WAV),
listener (one ESL connection), inbound (the switch's own listener), outbound (the outbound
socket), api (api/bgapi commands), call (FakeCall), switch (FakeSwitch); tests/rawclient.py holds
the raw-socket helpers the self-tests (tests/test_fake_switch.py) use.
It imports nothing from tomctl.

Choices where the captures and ESL-FACTS are silent (each also commented where it lives):
every transfer target, the fallback included, answers and parks like the captured 7001;
TOM hanging up (sendmsg hangup, hangup app, uuid_kill) gives the same event order as the
captured caller hang-up; the linger goodbye comes N + 0.2 s after the notice (3.2 s for
`linger 3` in s3); a unicast asked for inside an unlocked playback is dropped at its end
without killing later requests; after a transfer a new park may start unicast again;
playback_samples after a break rounds up to 8192-sample reads plus one (one capture);
`event xml` is refused; `show calls` rows follow switch_core_sqldb.c's basic_calls view;
variable_last_dtmf_duration, CHANNEL_DESTROY, Orig-Caller-ID-Name and the A leg as a
channel of its own are not modelled (the A leg uuid only works for uuid_kill and
uuid_send_dtmf); DTMF `*` does not stop a playback.
"""

from testkit.fakes.call import FakeCall
from testkit.fakes.switch import FakeSwitch

__all__ = ["FakeCall", "FakeSwitch"]
