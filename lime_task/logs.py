"""Logging helpers: ``log_message_max_size`` truncation."""

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
