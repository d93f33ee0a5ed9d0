"""Untrusted JSON is read with a bound on its nesting (domain/json_input.py)."""

from __future__ import annotations

import pytest

from interlock.domain.errors import MalformedJson
from interlock.domain.json_input import MAX_DEPTH, depth, loads


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 0),
    ("[]", 1),
    ('{"a": [1, {"b": [[]]}]}', 5),
    ('{"a": "[[[[{{{{"}', 1),
    ('{"a": "\\"[[[[", "b": [1]}', 2),
    ('["\\\\", [[1]]]', 3),
    ('["caf\u00e9 [", [1]]', 2),
])
def test_depth_counts_brackets_outside_strings(text: str, expected: int) -> None:
    assert depth(text) == expected
    assert depth(text.encode()) == expected


def test_nesting_up_to_the_bound_is_read_and_deeper_is_refused_by_name() -> None:
    at_bound = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(at_bound.encode()) is not None
    with pytest.raises(MalformedJson, match="the Jira webhook body is JSON nested too "
                                            f"deeply \\(more than {MAX_DEPTH} levels\\)"):
        loads(b"[" + at_bound.encode() + b"]", what="the Jira webhook body")


def test_far_too_deep_is_refused_before_the_decoder_recurses() -> None:
    with pytest.raises(MalformedJson, match="nested too deeply"):
        loads(b"[" * 200_000 + b"]" * 200_000)


@pytest.mark.parametrize("data", [b'{"a": ', b"\xff\xfe\x00", b"NaN-ish"])
def test_what_is_not_json_is_malformed_json_naming_the_body(data: bytes) -> None:
    with pytest.raises(MalformedJson, match=r"^the body is not JSON"):
        loads(data)


@pytest.mark.parametrize("data", [
    b'{"receiver": "team", "alerts": [{"labels": {"alertname": "Down"}}], "n": 1.5e3}',
    b'{"id": 123456789012345678901234567890, "neg": -9223372036854775809}',
    b"[18446744073709551616, 9223372036854775807]",
    b'{"value": NaN, "big": Infinity, "small": -Infinity}',
    b'\xef\xbb\xbf{"with": "a byte-order mark"}',
    b'{"lone": "\\ud800", "pair": "\\ud83d\\ude00", "nul": "\\u0000"}',
    b'{"a": 1, "a": 2}',
    '{"text": "caf\u00e9 \u2014 \u65e5\u672c"}'.encode("utf-16"),
])
def test_every_body_decodes_to_what_the_standard_library_reads(data: bytes) -> None:
    """The fast decoder must never change a value (a 31-digit id read as a float) nor
    refuse what ``json`` accepts."""
    import json
    expected = json.loads(data.decode(json.detect_encoding(data), "surrogatepass"))
    decoded = loads(data)
    assert repr(decoded) == repr(expected)


@pytest.mark.parametrize("data", [b"[1,]", b'{"a": 1} trailing', b'"\x01"', b"[01]",
                                  b'"\xff"'])
def test_what_the_standard_library_refuses_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedJson, match=r"^the body is not JSON"):
        loads(data)
