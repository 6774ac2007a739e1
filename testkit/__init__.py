"""What the tests and the benches share, and never part of TOM: the fake FreeSWITCH
(fakes/), generated speech (speech.py) and a harness that drives a conversation like a
phone line (harness.py)."""
