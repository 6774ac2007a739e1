"""All FreeSWITCH I/O: the ESL wire format, sessions, the call listener, the inbound link, unicast media."""
