"""Grafana Alerting's webhook contact point (unified alerting, payload version "1").

Grafana sends Alertmanager's shape plus its own fields: top-level ``title``, ``state``,
``message``, ``orgId``; per alert ``fingerprint``, ``silenceURL``, ``dashboardURL``,
``panelURL``, ``valueString``/``values``. See
https://grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/

What Interlock takes from each alert:

- fingerprint: Grafana's own, else a SHA-256 of the labels (as for Alertmanager).
- action: the alert's ``status``, else the group's ``status``/``state``. ``firing``,
  ``alerting`` and ``no_data`` fire (Grafana's NoData state fires a DatasourceNoData
  alert); ``resolved``, ``ok`` and ``normal`` resolve; ``pending`` and ``paused`` alerts
  are not alerts yet (or any more) and produce no signal.
- title: the ``alertname`` label, which in Grafana is the rule's human title; else
  ``annotations.summary``; else the notification's ``title``.
- name: ``alertname``. service/severity: the configured labels, as for Alertmanager.
- summary: ``annotations.summary``, else ``description``.
- url: ``generatorURL`` (the rule), else ``panelURL``, else ``dashboardURL``. The
  non-empty ``silenceURL``, ``dashboardURL``, ``panelURL`` and ``valueString`` are kept
  as annotations of those names, unless an annotation already has the name.

Legacy (pre-8) Grafana alerting sent one rule per request without ``alerts[]``; it is
not supported (Grafana 11 removed it) and is reported as such.
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
from interlock.sources.alertmanager import alert_fingerprint, alert_labels
from interlock.sources.reading import (
    MAX_ID,
    MAX_TEXT,
    as_list,
    as_object,
    at,
    string_map,
    text,
    timestamp,
    title_line,
)

#: None: a state that is not an alert (pending, paused): no signal at all.
STATES: dict[str, SignalAction | None] = {
    "firing": SignalAction.FIRING, "alerting": SignalAction.FIRING,
    "no_data": SignalAction.FIRING, "nodata": SignalAction.FIRING,
    "resolved": SignalAction.RESOLVED, "ok": SignalAction.RESOLVED,
    "normal": SignalAction.RESOLVED,
    "pending": None, "paused": None,
}
KEPT_FIELDS = ("silenceURL", "dashboardURL", "panelURL", "valueString")


def parse_grafana(payload: Any, options: ParseOptions) -> list[Signal]:
    envelope = as_object(payload, "")
    if "alerts" not in envelope:
        if "ruleName" in envelope or "evalMatches" in envelope:
            raise ParseError("alerts: missing; legacy Grafana alerting is not supported, "
                             "use a Grafana Alerting webhook contact point")
        raise ParseError("alerts: missing (is this a Grafana webhook payload?)")
    alerts = as_list(envelope["alerts"], "alerts")
    group_status = text(envelope, "status", "", MAX_ID) or text(envelope, "state", "", MAX_ID)
    group_title = text(envelope, "title", "")
    signals = []
    for index, item in enumerate(alerts):
        where = f"alerts[{index}]"
        signal = _signal(as_object(item, where), where, group_status, group_title, options)
        if signal is not None:
            signals.append(signal)
    return signals


def _signal(
    alert: Mapping[str, Any],
    where: str,
    group_status: str | None,
    group_title: str | None,
    options: ParseOptions,
) -> Signal | None:
    labels = alert_labels(alert, where)
    annotations = string_map(alert.get("annotations"), at(where, "annotations"),
                             value_limit=MAX_TEXT)
    status = text(alert, "status", where, MAX_ID) or group_status
    if status is None:
        raise ParseError(f"{at(where, 'status')}: missing")
    word = status.strip().lower()
    if word not in STATES:
        raise ParseError(f"{at(where, 'status')}: expected firing or resolved, got {status!r}")
    action = STATES[word]
    if action is None:
        return None
    extras = {key: text(alert, key, where) for key in KEPT_FIELDS}
    for key, value in extras.items():
        if value is not None and key not in annotations:
            annotations[key] = value
    name = labels.get("alertname", "")
    summary = (annotations.get("summary") or annotations.get("description") or "").strip()
    title = title_line(name or summary or group_title or "") or "Grafana alert"
    return Signal(
        fingerprint=alert_fingerprint(alert, where, labels, options),
        action=action,
        title=title,
        severity=severity_from(labels.get(options.severity_label)),
        name=name,
        service=labels.get(options.service_label) or None,
        summary=summary,
        labels=labels,
        annotations=annotations,
        starts_at=timestamp(alert.get("startsAt"), at(where, "startsAt")),
        ends_at=timestamp(alert.get("endsAt"), at(where, "endsAt")),
        url=(text(alert, "generatorURL", where) or extras["panelURL"]
             or extras["dashboardURL"]),
    )
