"""Per-endpoint payload templates: sandboxed Jinja2 that turns an event into the body a
receiver expects (a chat webhook wanting ``{"text": "..."}``, say).

A template sees the payload's top-level keys (``type``, ``timestamp``, ``data``) and the
whole of it as ``payload``. Its output is sent as ``application/json``, so it must be
JSON; build strings with ``~`` and embed them with ``tojson``, which quotes and escapes::

    {"text": {{ ("[" ~ data.incident.reference ~ "] " ~ data.incident.title) | tojson }}}

A private incident's payload holds only ``data.incident.id`` and ``.version``; guard the
rest with ``{% if data.incident.title is defined %}…{% endif %}``. :func:`check` refuses
a template that would fail on such a payload, so this shows when an endpoint is saved.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import string
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from interlock.domain import incidents, status_pages
from interlock.domain.errors import InvalidInput
from interlock.domain.events import EventType

SOURCE_MAX = 20_000
OUTPUT_MAX = 256 * 1024
#: How many items all ``range()`` calls of one render may hand out together.
RANGE_MAX = 10_000
#: The largest number a template may pass to a function or filter (``center``,
#: ``indent``, ``batch``, string methods …), each of which could otherwise allocate it.
ARGUMENT_MAX = 100_000
#: Loop iterations, calls and operators one render may perform in all: nested loops
#: over long strings otherwise run for minutes (N=262,144 froze a process for 60 s).
OPERATIONS_MAX = 200_000
#: Wall-clock seconds one render may take, checked at every counted operation.
RENDER_SECONDS = 2.0
_FORMAT_WIDTH = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")


class TemplateError(InvalidInput):
    """A payload template that does not compile, or whose rendering fails or is not JSON.

    Raised when an endpoint is saved (via :func:`check`) and when an event is rendered;
    in the second case the delivery attempt fails with this message."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"template: {message}", errors=[
            {"field": "template", "message": message}
        ])


class _Refused(Exception):
    """Raised inside a render by our own limits; turned into a TemplateError with its line."""


class _Budget(threading.local):
    """The operations and time left to the render running in this thread, if any."""

    operations = 0
    deadline = 0.0
    active = False

    def start(self) -> None:
        self.operations, self.deadline = OPERATIONS_MAX, time.monotonic() + RENDER_SECONDS
        self.active = True

    def spend(self) -> None:
        if not self.active:
            return
        self.operations -= 1
        if self.operations < 0:
            raise _Refused(f"more than {OPERATIONS_MAX} loop iterations and operations")
        if self.operations % 256 == 0 and time.monotonic() > self.deadline:
            raise _Refused(f"rendering took longer than {RENDER_SECONDS:g} s")


_BUDGET = _Budget()


def _counted(items: Any) -> Any:
    """A loop's iterable, one unit of the render's budget per iteration."""
    for item in items:
        _BUDGET.spend()
        yield item


class _CountingCodeGenerator(CodeGenerator):
    """Compiles ``{% for x in items %}`` as a loop over ``environment.counted(items)``,
    which a template cannot shadow or reach."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        counted = nodes.Call(nodes.EnvironmentAttribute("counted"), [node.iter], [], None,
                             None, lineno=node.lineno)
        node = nodes.For(node.target, counted, node.body, node.else_, node.test,
                         node.recursive, lineno=node.lineno)
        super().visit_For(node, frame)


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox blocks internals (``__class__``, ``mro``) and mutation, but not
    size or time: these hooks bound the operators and calls that allocate what they are
    told, and count every loop iteration, call and operator against the render's budget."""

    code_generator_class = _CountingCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    counted = staticmethod(_counted)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _BUDGET.spend()
        _check_operands(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _BUDGET.spend()
        if not isinstance(__obj, _RangeBudget):
            _check_arguments((*args, *kwargs.values()))
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_specs(value.__self__)
        return wrapped


class _RangeBudget:
    """``range`` for one render. Jinja's own stops at 100,000 items per call, which still
    lets nested loops run for hours; this one shares RANGE_MAX items across all calls."""

    def __init__(self) -> None:
        self.left = RANGE_MAX

    def __call__(self, *args: int) -> range:
        items = range(*args)
        if len(items) > self.left:
            raise _Refused(f"range() may produce at most {RANGE_MAX} items per render")
        self.left -= len(items)
        return items


def _check_operands(operator: str, left: Any, right: Any) -> None:
    """``2 ** 10 ** 9`` and ``"x" * 10 ** 9`` would each eat the worker's CPU or memory."""
    if operator == "**" and isinstance(left, int) and isinstance(right, int) and (
        right > 0 and abs(left).bit_length() * right > 4096
    ):
        raise _Refused(f"{left} ** {right} is too large")
    if operator == "%" and isinstance(left, str):
        _check_printf_widths(left)
    lists = isinstance(left, list | tuple) and isinstance(right, list | tuple)
    if operator == "+" and lists and len(left) + len(right) > OUTPUT_MAX:
        raise _Refused(f"a list of more than {OUTPUT_MAX} items")
    for sequence, count in ((left, right), (right, left)):
        sized = isinstance(sequence, str | list | tuple) and isinstance(count, int)
        if operator == "*" and sized and _weight(sequence) * count > OUTPUT_MAX:
            raise _Refused(f"repeating to more than {OUTPUT_MAX} items")


def _weight(sequence: str | list[Any] | tuple[Any, ...]) -> int:
    """Items, counting a string inside a list by its length: ``[s] * n | join``."""
    if isinstance(sequence, str):
        return len(sequence)
    return sum(len(item) if isinstance(item, str | list | tuple) else 1 for item in sequence)


def _check_printf_widths(template: str) -> None:
    """``'%0999999999d' % 1`` asks for a gigabyte; widths and precisions are bounded."""
    for match in _FORMAT_WIDTH.finditer(template):
        for number in match.groups():
            if number == "*" or (number is not None and int(number) > ARGUMENT_MAX):
                raise _Refused(f"format width or precision {number} is too large "
                               f"(at most {ARGUMENT_MAX})")


def _check_format_specs(template: str) -> None:
    """The same bound for ``'{:0999999999d}'.format(1)``."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # str.format will raise its own error
    for _, _, spec, _ in fields:
        if spec and ("{" in spec or any(int(n) > ARGUMENT_MAX
                                        for n in re.findall(r"\d+", spec))):
            raise _Refused(f"format spec {spec!r} is too large or nested")


def _check_arguments(values: Iterable[object]) -> None:
    for value in values:
        if isinstance(value, int) and abs(value) > ARGUMENT_MAX:
            raise _Refused(f"{value} is too large an argument (at most {ARGUMENT_MAX})")


def _bounded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    """The filter with its arguments checked; its input (after the context Jinja may pass
    first) is left alone, so ``{{ data.incident.version | string }}`` always works."""
    skip = 2 if hasattr(function, "jinja_pass_arg") else 1

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _BUDGET.spend()
        _check_arguments((*args[skip:], *kwargs.values()))
        if function.__name__ == "do_format" and isinstance(args[skip - 1], str):
            _check_printf_widths(args[skip - 1])
        return function(*args, **kwargs)

    return bounded


def _json_default(value: object) -> object:
    """Lets ``tojson`` report a missing field by name rather than "not JSON serializable"."""
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises the UndefinedError that names the field
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _environment() -> _Sandbox:
    environment = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False)
    environment.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": _json_default}
    environment.filters = {
        name: _bounded_filter(function) for name, function in environment.filters.items()
    }
    return environment


_ENVIRONMENT = _environment()


@dataclass(frozen=True)
class PayloadTemplate:
    source: str
    _template: jinja2.Template = dataclasses.field(repr=False, compare=False)

    @classmethod
    def compile(cls, source: str) -> PayloadTemplate:
        if len(source) > SOURCE_MAX:
            raise TemplateError(f"at most {SOURCE_MAX} characters")
        try:
            return cls(source, _ENVIRONMENT.from_string(source))
        except jinja2.TemplateSyntaxError as error:
            raise TemplateError(f"line {error.lineno}: {error.message}") from error

    def render(self, payload: Mapping[str, Any]) -> bytes:
        """The request body for ``payload``: JSON, at most OUTPUT_MAX bytes."""
        variables = {**payload, "payload": payload, "range": _RangeBudget()}
        size, chunks = 0, []
        _BUDGET.start()
        try:
            for chunk in self._template.generate(variables):
                chunks.append(encoded := chunk.encode())
                size += len(encoded)
                if size > OUTPUT_MAX:
                    raise TemplateError(f"output is larger than {OUTPUT_MAX // 1024} KiB")
        except TemplateError:
            raise
        except Exception as error:  # the template is user code: any failure is theirs
            raise TemplateError(_describe(error)) from error
        finally:
            _BUDGET.active = False
        return _json_body(b"".join(chunks))


def _describe(error: Exception) -> str:
    """The error with the template line Jinja put into the traceback, when it did."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
             if frame.filename == "<template>"]
    return f"line {lines[-1]}: {message}" if lines else message


def _json_body(body: bytes) -> bytes:
    try:
        json.loads(body, parse_constant=_refuse_constant)
    except ValueError as error:
        raise TemplateError(
            f"output is not JSON ({error}); embed values with | tojson"
        ) from error
    return body.strip()


def _refuse_constant(name: str) -> None:
    """Python reads NaN and Infinity; receivers' JSON parsers do not."""
    raise ValueError(f"{name} is not JSON")


def check(
    source: str, *, event_types: Iterable[EventType] | None = None,
    private_incidents: bool = True,
) -> bytes:
    """Compile and render against a sample of each event type the endpoint takes, so a
    broken template shows when the endpoint is saved, not at 3 a.m. Returns the first
    rendering, as a preview; with no incident event type chosen (only
    ``endpoint.disabled``) there is no sample, so it only compiles and returns ``b""``.

    ``private_incidents`` says whether the endpoint can receive them (its filter may
    exclude them). If so, a template failing on the redacted payload is refused: every
    private event would otherwise fail delivery and be retried for days.
    """
    template = PayloadTemplate.compile(source)
    samples = sample_payloads()
    chosen = [kind for kind in event_types or samples if kind in samples]
    previews = [template.render(samples[kind]) for kind in chosen]
    if chosen and private_incidents:
        try:
            template.render(_redacted(chosen[0]))
        except TemplateError as error:
            raise TemplateError(
                "fails for private incidents, whose payload holds only data.incident.id and "
                f"data.incident.version ({error.message}); guard other fields with "
                "{% if data.incident.title is defined %}"
            ) from error
    return previews[0] if previews else b""


SAMPLE_TIME = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)


def sample_payloads() -> dict[EventType, dict[str, Any]]:
    """A realistic payload per incident event type, built by the real incident rules."""
    declared = incidents.declare(
        incident_id="inc_sample", title="Checkout down", severity=incidents.Severity.HIGH,
        now=SAMPLE_TIME, summary="Checkout returns 502 for 40% of requests.",
        service="checkout", assignee="ana@example.com", labels={"team": "payments"},
    )
    declared = dataclasses.replace(declared, number=7)
    resolved = _changed(incidents.resolve(declared, SAMPLE_TIME))
    transitions = (
        _changed(incidents.update(declared, {"severity": incidents.Severity.CRITICAL},
                                  SAMPLE_TIME)),
        _changed(incidents.acknowledge(declared, SAMPLE_TIME)),
        resolved,
        _changed(incidents.reopen(resolved.incident, SAMPLE_TIME)),
        incidents.comment(declared, "Rolled back to v412.", SAMPLE_TIME),
    )
    payloads = {
        EventType.INCIDENT_CREATED: _payload(EventType.INCIDENT_CREATED, declared, {}),
        EventType.INCIDENT_ALERT_ATTACHED:
            _payload(EventType.INCIDENT_ALERT_ATTACHED, declared, {}),
    }
    for transition in transitions:
        payloads[transition.event_type] = _payload(
            transition.event_type, transition.incident, transition.changes
        )
    payloads[EventType.INCIDENT_COMMENT_ADDED]["data"]["comment"] = {
        "id": "tle_sample", "body": "Rolled back to v412.", "actor": "ana@example.com",
    }
    published = status_pages.published(declared, SAMPLE_TIME)
    payloads[EventType.INCIDENT_PUBLIC_UPDATE] = _payload(
        published.event_type, published.incident, published.changes)
    payloads[EventType.INCIDENT_PUBLIC_UPDATE]["data"]["public_update"] = (
        status_pages.update_to_dict(status_pages.PublicUpdate(
            id="pub_sample", incident_id="inc_sample",
            status=status_pages.UpdateStatus.INVESTIGATING, title="Payments failing",
            body="Some payments fail at checkout. We are investigating.",
            components={"cmp_sample": status_pages.ComponentStatus.PARTIAL_OUTAGE},
            page_ids=("spg_sample",), published_at=SAMPLE_TIME)))
    return payloads


def _changed(transition: incidents.Transition | None) -> incidents.Transition:
    if transition is None:  # the sample commands above each change the incident
        raise AssertionError("a sample command changed nothing")
    return transition


def _payload(
    kind: EventType, incident: incidents.Incident, changes: dict[str, Any]
) -> dict[str, Any]:
    data = {"incident": incidents.to_dict(incident), "changes": changes}
    return {"type": kind.value, "timestamp": _timestamp(), "data": data}


def _redacted(kind: EventType) -> dict[str, Any]:
    return {"type": kind.value, "timestamp": _timestamp(),
            "data": {"incident": {"id": "inc_sample", "version": 2}}}


def _timestamp() -> str:
    return SAMPLE_TIME.isoformat().replace("+00:00", "Z")
