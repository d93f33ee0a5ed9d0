"""Plugins that claim a kind Interlock already has, for the registry's tests."""

from __future__ import annotations

import dataclasses

from interlock.connectors.jira.plugin import PLUGIN as JIRA
from interlock.sources.builtin import GENERIC

SECOND_JIRA = dataclasses.replace(JIRA, title="Another Jira")
SECOND_GENERIC = dataclasses.replace(GENERIC, title="Another generic")
