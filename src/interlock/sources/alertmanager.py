"""Prometheus Alertmanager's webhook (``webhook_config``, payload version "4").

One request carries a group: ``alerts[]``, each with ``status`` (firing|resolved),
``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``generatorURL`` and, since
Alertmanager 0.19, ``fingerprint``. See
https://prometheus.io/docs/alerting/latest/configuration/#webhook_config

What Interlock takes from each alert:

- fingerprint: Alertmanager's own; when missing (older versions), a SHA-256 of the
  labels (all of them, or ``fingerprint_fields``), which is what identifies an alert in
  Alertmanager too.
- action: the alert's ``status``, else the group's.
- title: ``annotations.summary``; else ``alertname`` and up to three key labels
  (the service label, instance, job, namespace, pod, cluster), e.g.
  ``ProbeFailure (instance=https://server.example.org, job=http_checks)``.
- name: ``alertname``. service: the ``service_label`` label, and nothing else: ``job``
  names a scrape job, not a service, so it is never taken for one.
- severity: the ``severity_label`` label through :func:`severity_from` (medium when
  absent or unknown). summary: ``annotations.description``, else ``summary``.
- url: ``generatorURL``; times: ``startsAt``/``endsAt`` (the zero time is "not set").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from interlock.domain.alerts import (
    ParseError,
    ParseOptions,
    Signal,
    SignalAction,
    severity_from,
)
from interlock.sources.reading import (
    MAX_ID,
    MAX_LINE,
    MAX_TEXT,
    as_list,
    as_object,
    at,
    fingerprint_of,
    string_map,
    text,
    timestamp,
    title_line,
)

STATUSES = {"firing": SignalAction.FIRING, "resolved": SignalAction.RESOLVED}
KEY_LABELS = ("instance", "job", "namespace", "pod", "cluster")


def parse_alertmanager(payload: Any, options: ParseOptions) -> list[Signal]:
    envelope = as_object(payload, "")
    group_status = text(envelope, "status", "", MAX_ID)
    if "alerts" not in envelope:
        raise ParseError("alerts: missing (is this an Alertmanager webhook payload?)")
    alerts = as_list(envelope["alerts"], "alerts")
    return [
        _signal(as_object(item, f"alerts[{index}]"), f"alerts[{index}]", group_status, options)
        for index, item in enumerate(alerts)
    ]


def _signal(
    alert: Mapping[str, Any], where: str, group_status: str | None, options: ParseOptions
) -> Signal:
    labels = alert_labels(alert, where)
    annotations = string_map(alert.get("annotations"), at(where, "annotations"),
                             value_limit=MAX_TEXT)
    status = text(alert, "status", where, MAX_ID) or group_status
    if status is None:
        raise ParseError(f"{at(where, 'status')}: missing")
    action = STATUSES.get(status.strip().lower())
    if action is None:
        raise ParseError(f"{at(where, 'status')}: expected firing or resolved, got {status!r}")
    name = labels.get("alertname", "")
    summary_annotation = annotations.get("summary", "").strip()
    title = title_line(summary_annotation) if summary_annotation else _label_title(
        name, labels, options)
    return Signal(
        fingerprint=alert_fingerprint(alert, where, labels, options),
        action=action,
        title=title,
        severity=severity_from(labels.get(options.severity_label)),
        name=name,
        service=labels.get(options.service_label) or None,
        summary=(annotations.get("description") or summary_annotation).strip(),
        labels=labels,
        annotations=annotations,
        starts_at=timestamp(alert.get("startsAt"), at(where, "startsAt")),
        ends_at=timestamp(alert.get("endsAt"), at(where, "endsAt")),
        url=text(alert, "generatorURL", where),
    )


def alert_labels(alert: Mapping[str, Any], where: str) -> dict[str, str]:
    """An alert's labels, which both Alertmanager and Grafana always send."""
    if alert.get("labels") is None:
        raise ParseError(f"{at(where, 'labels')}: missing")
    return string_map(alert["labels"], at(where, "labels"), value_limit=MAX_LINE)


def alert_fingerprint(
    alert: Mapping[str, Any], where: str, labels: Mapping[str, str], options: ParseOptions
) -> str:
    own = text(alert, "fingerprint", where, MAX_ID)
    if own is not None:
        return own
    if not labels:
        raise ParseError(f"{where}: has neither a fingerprint nor labels to identify it")
    return fingerprint_of(labels, options.fingerprint_fields, at(where, "labels"))


def _label_title(name: str, labels: Mapping[str, str], options: ParseOptions) -> str:
    keys = (options.service_label, *KEY_LABELS)
    shown = [f"{key}={labels[key]}" for key in dict.fromkeys(keys) if labels.get(key)][:3]
    head = name or "Alert"
    return title_line(f"{head} ({', '.join(shown)})" if shown else head)
