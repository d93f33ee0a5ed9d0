"""Connector and source kinds come from entry points; a kind claimed twice stops the
start with a message naming both providers."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from interlock.connectors import registry
from interlock.plugins import PluginError
from interlock.sources import plugins as source_plugins

GROUP = "interlock.connectors"


def entry(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


def test_the_built_in_kinds_are_registered_by_entry_points() -> None:
    assert set(registry.plugins()) >= {"alertmanager", "jira", "slack"}
    assert set(source_plugins()) >= {"alertmanager", "grafana", "datadog", "pagerduty",
                                     "generic"}


def test_rate_limited_kinds_publish_their_pace() -> None:
    plugins = registry.plugins()
    assert plugins["slack"].pace == 1.0  # chat.postMessage: about 1 message/s
    assert plugins["jira"].pace == 0.2
    assert plugins["alertmanager"].pace is None


def test_a_kind_registered_twice_stops_the_start_naming_both() -> None:
    with pytest.raises(PluginError) as caught:
        registry.plugins([entry("jira", "interlock.connectors.jira.plugin:PLUGIN"),
                          entry("jira", "tests.support.plugins:SECOND_JIRA")])
    message = caught.value.detail
    assert "'jira' is registered twice" in message
    assert "interlock.connectors.jira.plugin:PLUGIN" in message
    assert "tests.support.plugins:SECOND_JIRA" in message


def test_an_entry_point_must_name_a_plugin_of_its_own_kind() -> None:
    with pytest.raises(PluginError, match=r"registers .* kind 'teams' but its plugin says "
                                          r"kind .jira."):
        registry.plugins([entry("teams", "interlock.connectors.jira.plugin:PLUGIN")])
    with pytest.raises(PluginError, match="is not a ConnectorPlugin"):
        registry.plugins([entry("jira", "interlock.connectors.jira.plugin:JiraSettings")])
    with pytest.raises(PluginError, match="could not be loaded: ModuleNotFoundError"):
        registry.plugins([entry("gone", "interlock_no_such_package:PLUGIN")])


def test_source_kinds_refuse_duplicates_too() -> None:
    group = "interlock.sources"
    with pytest.raises(PluginError, match="'generic' is registered twice"):
        source_plugins([EntryPoint("generic", "interlock.sources.builtin:GENERIC", group),
                        EntryPoint("generic", "tests.support.plugins:SECOND_GENERIC",
                                   group)])
