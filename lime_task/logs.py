"""Logging helpers: ``log_message_max_size`` truncation; a lost pool process in one line."""

from __future__ import annotations

import logging

TRUNCATED = " …[truncated]"


class TruncateMessages(logging.Filter):
    """Cut each record's message to ``max_size`` bytes (0: no limit), as the config says."""

    def __init__(self, max_size: int = 0) -> None:
        super().__init__()
        self.max_size = max_size

    def filter(self, record: logging.LogRecord) -> bool:
        if self.max_size > 0:
            message = record.getMessage()
            encoded = message.encode()
            if len(encoded) > self.max_size:
                record.msg = encoded[: self.max_size].decode(errors="ignore") + TRUNCATED
                record.args = None
        return True


class WorkerLostInOneLine(logging.Filter):
    """Celery logs a pool process that ended under a running task (a signal sent to the whole
    process group at a stop, the kernel's out-of-memory killer) with billiard's own traceback,
    which says nothing about the task. Keep the line, which names the signal; drop the traceback.
    The run itself records why it ended."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Celery passes billiard's ExceptionInfo.exc_info: the type is the real one, the value a
        # wrapper (ExceptionWithTraceback) that holds billiard's traceback as its text.
        kind = record.exc_info[0] if record.exc_info else None
        if kind is not None and kind.__name__ == "WorkerLostError":
            record.exc_info = None
            record.exc_text = None
        return True
