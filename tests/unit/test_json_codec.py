"""JSON that Interlock writes and reads back (domain/json_codec.py): orjson's speed, never
a value other than ``json``'s."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from interlock.domain import json_codec

VALUES: list[Any] = [
    {"labels": {"alertname": "Down", "service": "checkout"}, "count": 3, "ratio": 0.25},
    {"id": 123456789012345678901234567890, "neg": -9223372036854775809},
    [18446744073709551615, 2**64, -(2**63)],
    {"text": "caf\u00e9 \u2014 \u65e5\u672c \U0001f600", "quote": "\"\\/\n"},
    {7: "seven", 2.5: "two and a half", True: "yes", None: "none"},
    [1e16, 1.5e-7, -0.0, 0.1 + 0.2],
    ("a", "tuple"),
]


@pytest.mark.parametrize("value", VALUES)
def test_what_is_written_reads_back_as_json_would_read_json_s_own_text(value: Any) -> None:
    expected = json.loads(json.dumps(value))
    written = json_codec.dumps(value)
    assert json.loads(written) == expected
    assert repr(json_codec.loads(written)) == repr(expected)
    assert repr(json_codec.loads(written.encode())) == repr(expected)


def test_text_written_by_json_before_reads_back_the_same() -> None:
    for value in VALUES:
        old = json.dumps(value)
        assert repr(json_codec.loads(old)) == repr(json.loads(old))
    assert math.isnan(json_codec.loads('{"v": NaN}')["v"])


def test_nan_is_written_as_null_which_every_reader_takes() -> None:
    assert json_codec.dumps({"v": math.nan, "w": math.inf}) == '{"v":null,"w":null}'


@dataclass
class _Thing:
    name: str


@pytest.mark.parametrize("value", [datetime.now(UTC), _Thing("x"), {"when": datetime.now(UTC)},
                                   object()])
def test_what_json_cannot_write_is_still_refused(value: Any) -> None:
    with pytest.raises(TypeError):
        json_codec.encode(value)
