"""Logging of the server and its worker processes, as text or JSON lines (``GOVERNOR_LOG_FORMAT``).

Worker processes start from a fork server that never saw the server's logging set-up, so both
call this with the same settings and their lines look alike in one stream.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime

from governor.settings import Settings
from governor.store.crypto import redact

TEXT_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.processName,
            "message": record.getMessage(),
        }
        return json.dumps(entry)


class _Redact(logging.Filter):
    """Mask credentials of any URL a message or its traceback carries, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info = None
            record.exc_text = None
        record.msg = redact(message)
        record.args = None
        return True


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_Redact())
    logging.basicConfig(level=settings.log_level, handlers=[handler], force=True)
