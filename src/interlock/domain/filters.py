"""The filter language of webhook endpoints (and, later, of connectors' sharing rules).

A filter is a JSON object users write in API requests; every condition must hold::

    {"severity": ["critical", "high"],      # a list: one of
     "service": "checkout",                 # a string: equals
     "labels.team": "payments",             # labels are addressed as labels.<name>
     "status": {"not": "resolved"},         # an object with one operator:
     "assignee": {"exists": false},         #   not / exists / contains
     "title": {"contains": "database"}}     # contains: case-insensitive substring

``{}`` and ``null`` match everything. Values are compared exactly (labels and services
are identifiers); only ``contains`` ignores case, because it is meant for titles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from interlock.domain.errors import InvalidInput
from interlock.domain.incidents import Severity, Status, Visibility

MAX_CONDITIONS = 32
MAX_VALUES = 100
VALUE_MAX = 500  # the longest label value or title an incident can hold
LABEL_NAME_MAX = 100

#: Fields with a closed set of values: a typo there would silently match nothing.
ENUM_FIELDS: dict[str, tuple[str, ...]] = {
    "severity": tuple(Severity),
    "status": tuple(Status),
    "visibility": tuple(Visibility),
}
#: Fields that may be null, so that ``exists`` means something for them.
OPTIONAL_FIELDS = ("service", "assignee")
FIELDS = (*ENUM_FIELDS, *OPTIONAL_FIELDS, "title")

Operator = Literal["is", "not", "exists", "contains"]
_OBJECT_OPERATORS = ("not", "exists", "contains")


@dataclass(frozen=True)
class Condition:
    """One key of the filter. ``values`` holds the candidates of ``is``/``not`` and the
    text of ``contains``; ``present`` is the operand of ``exists``."""

    field: str
    operator: Operator
    values: tuple[str, ...] = ()
    present: bool = True

    def holds(self, value: str | None) -> bool:
        if self.operator == "is":
            return value in self.values
        if self.operator == "not":
            return value not in self.values
        if self.operator == "exists":
            return (value is not None) == self.present
        return value is not None and self.values[0].casefold() in value.casefold()

    def to_json(self) -> object:
        if self.operator == "exists":
            return {"exists": self.present}
        if self.operator == "contains":
            return {"contains": self.values[0]}
        values: object = self.values[0] if len(self.values) == 1 else list(self.values)
        return values if self.operator == "is" else {"not": values}


@dataclass(frozen=True)
class Filter:
    conditions: tuple[Condition, ...] = ()

    @classmethod
    def parse(cls, raw: object) -> Filter:
        """Validate what a user wrote; every bad key is reported, each as ``filter.<key>``."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise _invalid([("filter", "must be an object such as {\"severity\": \"critical\"}")])
        if len(raw) > MAX_CONDITIONS:
            raise _invalid([("filter", f"at most {MAX_CONDITIONS} conditions")])
        conditions: list[Condition] = []
        problems: list[tuple[str, str]] = []
        for key, value in raw.items():
            try:
                conditions.append(_parse_condition(str(key), value))
            except ValueError as error:
                problems.append((f"filter.{key}", str(error)))
        if problems:
            raise _invalid(problems)
        return cls(tuple(conditions))

    def matches(self, incident: Mapping[str, Any] | None) -> bool:
        """Whether an event about ``incident`` goes through.

        Pass the incident *as the receiver will see it*. For a private incident that is
        the redacted ``{"id", "version"}``: matching on the full record would let a
        filter such as ``{"title": {"contains": "layoff"}}`` learn private fields from
        whether events arrive. A field absent from the dict is unknown, and a condition
        on an unknown field fails (even ``not`` and ``exists: false``), so only the empty
        filter or one naming nothing but ``visibility`` lets a redacted incident through;
        an absent ``visibility`` reads as ``private``, the only kind that is redacted.

        ``None`` (an event about no incident, such as ``endpoint.disabled``) matches:
        a filter selects incidents, and such events are chosen by event type alone.
        """
        if incident is None:
            return True
        return all(_holds(condition, incident) for condition in self.conditions)

    def to_json(self) -> dict[str, object]:
        """What :meth:`parse` accepts; a one-item list comes back as a plain string."""
        return {condition.field: condition.to_json() for condition in self.conditions}


def _holds(condition: Condition, incident: Mapping[str, Any]) -> bool:
    name = condition.field
    if name.startswith("labels."):
        labels = incident.get("labels")
        if not isinstance(labels, Mapping):
            return False
        return condition.holds(_text(labels.get(name.removeprefix("labels."))))
    if name == "visibility" and name not in incident:
        return condition.holds(Visibility.PRIVATE.value)
    if name not in incident:
        return False
    return condition.holds(_text(incident[name]))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _parse_condition(key: str, value: object) -> Condition:
    _check_field(key)
    if not isinstance(value, Mapping):
        return Condition(key, "is", _parse_values(key, value))
    if len(value) != 1 or next(iter(value)) not in _OBJECT_OPERATORS:
        raise ValueError("an object must hold exactly one of: not, exists, contains")
    operator, operand = next(iter(value.items()))
    if operator == "not":
        return Condition(key, "not", _parse_values(key, operand))
    if operator == "exists":
        if not isinstance(operand, bool):
            raise ValueError("exists takes true or false")
        if key not in OPTIONAL_FIELDS and not key.startswith("labels."):
            raise ValueError("exists applies to service, assignee and labels only")
        return Condition(key, "exists", present=operand)
    if key in ENUM_FIELDS:
        raise ValueError("contains is for text; list the values you want instead")
    return Condition(key, "contains", (_check_text(operand),))


def _check_field(key: str) -> None:
    if key in FIELDS:
        return
    label = key.removeprefix("labels.")
    if key.startswith("labels.") and 0 < len(label) <= LABEL_NAME_MAX:
        return
    raise ValueError(f"unknown field; use one of {', '.join(FIELDS)} or labels.<name>")


def _parse_values(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items: list[object] = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError("must be a string, a list of strings or an object "
                         "with one of: not, exists, contains")
    if not items:
        raise ValueError("an empty list would match nothing; remove the condition instead")
    if len(items) > MAX_VALUES:
        raise ValueError(f"at most {MAX_VALUES} values")
    values = tuple(dict.fromkeys(_check_text(item) for item in items))
    allowed = ENUM_FIELDS.get(key, ())
    wrong = [item for item in values if allowed and item not in allowed]
    if wrong:
        raise ValueError(f"unknown value {', '.join(wrong)}; use one of {', '.join(allowed)}")
    return values


def _check_text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("values must be non-empty strings")
    if len(value) > VALUE_MAX:
        raise ValueError(f"values are at most {VALUE_MAX} characters")
    return value


def _invalid(problems: list[tuple[str, str]]) -> InvalidInput:
    detail = "; ".join(f"{name}: {message}" for name, message in problems)
    return InvalidInput(f"invalid filter ({detail})", errors=[
        {"field": name, "message": message} for name, message in problems
    ])
