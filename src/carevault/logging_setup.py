"""Structured JSON logs to the data folder and stderr. Callers pass ids and codes, never PHI.

Request threads only put records on a queue; one listener thread formats and writes
them, so a request never waits on the disk (or on the log file's rollover check).
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
from datetime import UTC, datetime
from pathlib import Path

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's terminal variant of msg
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and where, not its message: messages can quote values.
            doc["error"] = record.exc_info[0].__name__
        return orjson.dumps(doc, default=str).decode()


class _Enqueue(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # The listener formats it; carry the exception's type only, never its message.
        if record.exc_info and record.exc_info[0] is not None:
            record.error = record.exc_info[0].__name__
        record.exc_info = None
        record.exc_text = None
        return record


def configure(log_dir: Path, *, level: int = logging.INFO) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    formatter = JsonFormatter()
    file_handler = logging.handlers.RotatingFileHandler(
        log_dir / "carevault.log", maxBytes=50_000_000, backupCount=5
    )
    stream = logging.StreamHandler()
    for handler in (file_handler, stream):
        handler.setFormatter(formatter)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, file_handler, stream)
    listener.start()
    atexit.register(listener.stop)
    root = logging.getLogger()
    root.handlers[:] = [_Enqueue(records)]
    root.setLevel(level)
    # uvicorn's own access log prints query strings; ours (web/middleware.py) does not.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
