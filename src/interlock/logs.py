"""Structured logging with structlog. Secrets never reach a log line: nothing here logs
headers or bodies, callers log ids, not keys, and the web server's access log shows no
query values (a source's token may travel as ``?token=``)."""

from __future__ import annotations

import logging
import re

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
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(known, MaskQueryValues) for known in access.filters):
        # A filter on the logger, not on a handler: uvicorn replaces the handlers when
        # it configures its logging, but leaves a logger's filters in place.
        access.addFilter(MaskQueryValues())


#: A query parameter's value: after ``?name=`` or ``&name=``, up to the next ``&``,
#: ``#``, space or quote.
_QUERY_VALUE = re.compile(r"([?&][^=&#\s\"]*=)[^&#\s\"]*")


def mask_query_values(text: str) -> str:
    """``/ingest/src_1?token=ilt_abc&x=1`` becomes ``/ingest/src_1?token=***&x=***``."""
    return _QUERY_VALUE.sub(r"\1***", text)


class MaskQueryValues(logging.Filter):
    """Masks every query value in a record's arguments (uvicorn passes the request
    path with its query as one) and in its message. Every value, not a list of
    sensitive names: a tool may call its secret anything."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_query_values(arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        if isinstance(record.msg, str):
            record.msg = mask_query_values(record.msg)
        return True


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
