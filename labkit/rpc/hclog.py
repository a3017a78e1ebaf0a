"""Log lines in hclog's JSON format, the way go-plugin plugins log on stderr.

A go-plugin host reads its plugin's stderr line by line; a line that is a JSON object with
``@level`` and ``@message`` is a log record (re-logged at that level), anything else is
plain text. labkit's plugins write such lines, and labkit's host reads them back.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

LEVELS = ("trace", "debug", "info", "warn", "error")


@dataclass(frozen=True)
class LogRecord:
    """One log line of a plugin."""

    level: str
    message: str
    module: str = ""
    fields: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.fields.items())
        return f"[{self.level.upper()}] {self.module + ': ' if self.module else ''}" \
               f"{self.message}{' ' + extra if extra else ''}"


def format_line(level: str, message: str, module: str = "", **fields: Any) -> str:
    """One hclog JSON line (no newline) with the current time."""
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "@level": level,
        "@message": message,
        "@timestamp": now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z",
    }
    if module:
        record["@module"] = module
    for key, value in fields.items():
        record[key] = value if isinstance(value, (int, float, bool)) else str(value)
    return json.dumps(record, ensure_ascii=False)


def parse_line(line: str) -> LogRecord | None:
    """The record on a stderr line, or None when the line is plain text."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "@message" not in data:
        return None
    extra = {k: v for k, v in data.items() if not k.startswith("@")}
    return LogRecord(level=str(data.get("@level", "info")), message=str(data["@message"]),
                     module=str(data.get("@module", "")), fields=extra)


class Logger:
    """Writes hclog JSON lines to one stream (a plugin's real stderr), thread-safely."""

    def __init__(self, stream: IO[str], module: str) -> None:
        self._stream = stream
        self._module = module
        self._lock = threading.Lock()

    def log(self, level: str, message: str, **fields: Any) -> None:
        line = format_line(level, message, self._module, **fields)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def info(self, message: str, **fields: Any) -> None:
        self.log("info", message, **fields)

    def warn(self, message: str, **fields: Any) -> None:
        self.log("warn", message, **fields)

    def error(self, message: str, **fields: Any) -> None:
        self.log("error", message, **fields)

    def debug(self, message: str, **fields: Any) -> None:
        self.log("debug", message, **fields)
