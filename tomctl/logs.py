"""Structured logging: JSON lines for journald, or plain lines for a terminal.

Messages are static event names; values travel in ``fields``. Personal data (transcripts,
reply texts, digits) is passed through :func:`personal`, which drops it unless the operator
set ``TOM_LOG_PERSONAL_DATA=true``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from tomctl.config import LogFormat, LogSettings

_personal_allowed = False
_REDACTED = "[redacted]"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "component": record.name.removeprefix("tomctl."),
            "event": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        line = f"{stamp} {record.levelname[0]} {record.name.removeprefix('tomctl.')}: " \
               f"{record.getMessage()} {fields}".rstrip()
        if record.exc_info and record.exc_info[0] is not None:
            line += f" error={record.exc_info[0].__name__}: {record.exc_info[1]}"
        return line


def configure(settings: LogSettings, stream: Any = None) -> None:
    global _personal_allowed
    _personal_allowed = settings.personal_data
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if settings.format is LogFormat.JSON else PlainFormatter())
    root = logging.getLogger("tomctl")
    root.handlers[:] = [handler]
    root.setLevel(settings.level.upper())
    root.propagate = False


def personal(value: Any) -> Any:
    """Return ``value`` if the operator allowed personal data in logs, else a placeholder."""
    return value if _personal_allowed else _REDACTED


def event(logger: logging.Logger, name: str, level: int = logging.INFO,
          exc_info: bool = False, **fields: Any) -> None:
    """Log a static event name with structured fields."""
    logger.log(level, name, extra={"fields": fields}, exc_info=exc_info)
