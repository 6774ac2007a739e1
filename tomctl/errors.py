"""One error tree for TOM. Each error says whose fault it is and whether a retry helps.

    TomError
    ├── ConfigError          a TOM_* setting is invalid            (operator, no retry)
    ├── UnsafeCommandValue   a value may not go into an ESL command (tom, no retry; a ValueError)
    ├── ModelError           a model file is missing or broken     (operator, no retry)
    ├── PipelineError        inference failed inside one turn      (tom, retry next turn)
    │   ├── SpeechToTextError
    │   ├── LanguageModelError
    │   └── TextToSpeechError
    └── TelephonyError       talking to FreeSWITCH failed
        ├── EslProtocolError the peer sent data that is not ESL      (freeswitch, no retry)
        ├── CallGone         the call hung up or its socket closed   (caller, no retry)
        ├── CommandTimeout   FreeSWITCH did not answer in time       (freeswitch, retry)
        ├── CommandFailed    FreeSWITCH answered -ERR                (tom, no retry)
        └── LinkDown         the inbound ESL connection is not up    (freeswitch, retry)

Broad ``except`` clauses appear only at greenlet boundaries, and never bare: a bare
``except:`` would swallow gevent's ``Timeout`` and ``GreenletExit``.
"""

from __future__ import annotations


class TomError(Exception):
    fault = "tom"
    retryable = False


class ConfigError(TomError):
    fault = "operator"


class UnsafeCommandValue(TomError, ValueError):
    """A value refused on its way into an ESL command: CR/LF would start another command,
    a path would leave its directory. Whoever built the command must not send it."""


class ModelError(TomError):
    """A model could not be found or loaded; the message names the file and the setting."""

    fault = "operator"


class PipelineError(TomError):
    retryable = True
    component = "pipeline"


class SpeechToTextError(PipelineError):
    component = "stt"


class LanguageModelError(PipelineError):
    component = "llm"


class TextToSpeechError(PipelineError):
    component = "tts"


class TelephonyError(TomError):
    fault = "freeswitch"


class EslProtocolError(TelephonyError):
    """Bytes from the peer that are not an ESL frame; the connection cannot be trusted."""


class CallGone(TelephonyError):
    """The channel hung up or its socket closed: every waiter for the call gets this."""

    fault = "caller"


class CommandTimeout(TelephonyError):
    retryable = True


class CommandFailed(TelephonyError):
    fault = "tom"


class LinkDown(TelephonyError):
    retryable = True
