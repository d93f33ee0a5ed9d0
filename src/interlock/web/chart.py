"""The last 24 hours as four small bar charts, drawn server-side as inline SVG.

Each series gets its own scale: alerts can run to thousands while incidents stay in
single digits, and one shared axis would flatten the second to nothing. Totals are
printed beside each chart, so nobody has to read a scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from interlock.services.console import HourlyActivity

WIDTH = 240
HEIGHT = 48
GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    start: datetime


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    total: int
    peak: int
    bars: list[Bar]


def series(activity: HourlyActivity) -> list[Series]:
    counts = activity.counts
    named = [
        ("alerts", "Alerts in", counts.alerts),
        ("incidents", "Incidents opened", counts.incidents),
        ("delivered", "Deliveries succeeded", counts.delivered),
        ("failed", "Deliveries failed", counts.failed),
    ]
    return [_series(key, label, values, activity.bounds) for key, label, values in named]


def _series(key: str, label: str, values: list[int], bounds: list[datetime]) -> Series:
    peak = max(values, default=0)
    slot = WIDTH / max(len(values), 1)
    bars = []
    for index, count in enumerate(values):
        # A zero still shows as a hairline, so an empty hour reads as "none", not "gap".
        height = max(1.0, (HEIGHT - 2) * count / peak) if peak else 1.0
        bars.append(Bar(x=round(index * slot, 2), y=round(HEIGHT - height, 2),
                        width=round(slot - GAP, 2), height=round(height, 2), count=count,
                        start=bounds[index]))
    return Series(key, label, sum(values), peak, bars)
