"""The options a source takes, as pydantic models: their JSON Schema is what
``GET /api/v1/source-kinds`` publishes (the checks a user meets when saving stay in
:func:`interlock.sources.parse_options`, whose messages name each field)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SourceOptions(BaseModel):
    """Options every kind takes."""

    model_config = ConfigDict(extra="forbid")

    service_label: str = Field(
        "service", min_length=1, max_length=200, title="Service label",
        description="The label (tag, custom detail) that names the service")
    severity_label: str = Field(
        "severity", min_length=1, max_length=200, title="Severity label",
        description="The label that holds the severity")
    fingerprint_fields: list[str] = Field(
        default_factory=list, max_length=50, title="Fingerprint fields",
        description="For payloads without an identity of their own: the labels whose "
                    "values identify an alert (empty: all labels)")


class MappedSourceOptions(SourceOptions):
    """Generic JSON: where each field is, as JMESPath expressions."""

    mapping: dict[str, str] = Field(
        title="Mapping", description="Field (title, status, severity, fingerprint, "
        "service, summary, name, labels, annotations, url, starts_at, ends_at, alerts) → "
        "JMESPath expression; title is required")
