"""One error tree for TOM. Each error says whose fault it is and whether a retry helps.

    TomError
    ├── ConfigError          a TOM_* setting is invalid            (operator, no retry)
    ├── ModelError           a model file is missing or broken     (operator, no retry)
    └── PipelineError        inference failed inside one turn      (tom, retry next turn)
        ├── SpeechToTextError
        ├── LanguageModelError
        └── TextToSpeechError

Broad ``except`` clauses appear only at greenlet boundaries, and never bare: a bare
``except:`` would swallow gevent's ``Timeout`` and ``GreenletExit``.
"""

from __future__ import annotations


class TomError(Exception):
    fault = "tom"
    retryable = False


class ConfigError(TomError):
    fault = "operator"


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
