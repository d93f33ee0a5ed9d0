"""Structured logging with structlog. Secrets never reach a log line: nothing here logs
headers or bodies, callers log ids, not keys, and the access log (api.middleware) shows
no query values (a source's token may travel as ``?token=``)."""

from __future__ import annotations

import logging
import re
from typing import Literal

import structlog


def configure(level: str = "info", fmt: str = "console") -> None:
    numeric = logging.getLevelName(level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=numeric, format="%(message)s")


#: Which requests the access log shows: every one, those answered 4xx or 5xx, or none.
AccessLogMode = Literal["all", "errors", "off"]


#: A query parameter's value: after ``?name=`` or ``&name=``, up to the next ``&``,
#: ``#``, space or quote.
_QUERY_VALUE = re.compile(r"([?&][^=&#\s\"]*=)[^&#\s\"]*")


def mask_query_values(text: str) -> str:
    """``/ingest/src_1?token=ilt_abc&x=1`` becomes ``/ingest/src_1?token=***&x=***``."""
    return _QUERY_VALUE.sub(r"\1***", text)


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
