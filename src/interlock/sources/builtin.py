"""The source kinds built into Interlock, each a SourcePlugin registered by entry point
in Interlock's ``pyproject.toml`` (group ``interlock.sources``), as anyone's would be."""

from __future__ import annotations

from interlock.domain.alerts import SourceKind, SourcePlugin, SourceSigning
from interlock.sources.alertmanager import parse_alertmanager
from interlock.sources.datadog import parse_datadog
from interlock.sources.generic import parse_generic
from interlock.sources.grafana import parse_grafana
from interlock.sources.models import MappedSourceOptions, SourceOptions
from interlock.sources.pagerduty import parse_pagerduty

ALERTMANAGER = SourcePlugin(
    kind=SourceKind.ALERTMANAGER.value, title="Prometheus Alertmanager",
    description="Alertmanager's webhook receiver (version 4 payloads).",
    parse=parse_alertmanager, options=SourceOptions)
GRAFANA = SourcePlugin(
    kind=SourceKind.GRAFANA.value, title="Grafana alerting",
    description="Grafana's webhook contact point; optionally HMAC-signed.",
    parse=parse_grafana, options=SourceOptions, signing=SourceSigning.HMAC)
DATADOG = SourcePlugin(
    kind=SourceKind.DATADOG.value, title="Datadog webhook",
    description="Datadog's webhook integration, with its default or extended payload.",
    parse=parse_datadog, options=SourceOptions)
PAGERDUTY = SourcePlugin(
    kind=SourceKind.PAGERDUTY.value, title="PagerDuty Events v2",
    description="Events in PagerDuty's Events API v2 format (trigger, acknowledge, "
                "resolve).",
    parse=parse_pagerduty, options=SourceOptions)
GENERIC = SourcePlugin(
    kind=SourceKind.GENERIC.value, title="Generic JSON",
    description="Any tool's JSON webhook, read through a JMESPath mapping; optionally "
                "signed with Standard Webhooks.",
    parse=parse_generic, options=MappedSourceOptions, takes_mapping=True,
    signing=SourceSigning.STANDARD_WEBHOOKS)
