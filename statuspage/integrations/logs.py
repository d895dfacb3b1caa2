"""Integration tokens never reach a log line.

A token can be in a request line (`/api/hooks/<id>/<token>`, for tools that cannot send headers),
which the development server (logger "werkzeug") and gunicorn's access log ("gunicorn.access")
write for every request, and in the path of an error logged by the app. Tokens carry a fixed
prefix, so one filter on those loggers and on the root handlers rewrites any line that holds one.
"""
from __future__ import annotations

import logging
import re

from .service import TOKEN_PREFIX

TOKEN_RE = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-]*")
# The last path segment of a receiver URL is the token, even if someone pasted a mangled one.
HOOK_PATH_RE = re.compile(r"(/api/hooks/\d+/)[^\s/?#\"']+")
REDACTED = "[redacted]"
LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error")


def redact(text: str) -> str:
    return HOOK_PATH_RE.sub(r"\1" + REDACTED, TOKEN_RE.sub(TOKEN_PREFIX + REDACTED, text))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's business, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact_tokens_in_logs() -> None:
    """Install the filter on the request loggers and on every root handler (idempotent)."""
    targets: list[logging.Filterer] = [logging.getLogger(name) for name in LOGGERS]
    targets += logging.getLogger().handlers
    for target in targets:
        if not any(isinstance(f, RedactTokens) for f in target.filters):
            target.addFilter(RedactTokens())
