"""Reading untrusted JSON with a bound on how deeply it nests.

Python's ``json`` recurses once per level: a body of 100,000 ``[`` raises
RecursionError (a 500 wherever nobody catches it), and a value a few hundred levels deep
that does decode can still exhaust the stack later, when it is walked, copied or encoded
again. No monitoring tool, Jira or Slack nests anywhere near :data:`MAX_DEPTH`, so a
deeper document is refused before it is decoded, with a message that says so.

The depth is counted on the text with brackets inside strings removed, in C-speed
passes (``re``, ``itertools``), so the check costs little next to the decoding itself.

UTF-8 bodies are decoded with orjson, a third of the standard library's time for a
single-alert payload (2.3 against 6.6 µs for 513 bytes, and no text to decode first),
which the ingest API pays for every POST and the alert worker again. It accepts exactly
what ``json`` does or less; whatever it refuses (NaN, a byte-order mark, a lone
surrogate escape) and any body with a run of 19 digits (orjson turns integers beyond 64
bits into floats) is decoded by ``json`` as before, so the answer never depends on which
decoder ran.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import orjson

from interlock.domain.errors import MalformedJson
from interlock.domain.json_codec import may_hold_long_integer

#: Deepest nesting of arrays and objects accepted (``[[1]]`` is 2).
MAX_DEPTH = 64
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def loads(data: bytes | str, *, what: str = "the body", max_depth: int = MAX_DEPTH) -> Any:
    """The decoded JSON value of ``data`` (bytes in any encoding ``json`` detects).

    Raises MalformedJson (a 400) when it is not JSON, naming ``what``, or when it nests
    deeper than ``max_depth``."""
    if isinstance(data, bytes) and not may_hold_long_integer(data):
        check_depth(data, what=what, max_depth=max_depth)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # json decides, and words the refusal
    try:
        text = (data.decode(json.detect_encoding(data), "surrogatepass")
                if isinstance(data, bytes) else data)
    except UnicodeDecodeError as error:
        raise MalformedJson(f"{what} is not JSON: {error}") from None
    check_depth(text, what=what, max_depth=max_depth)
    try:
        return json.loads(text)
    except ValueError as error:
        raise MalformedJson(f"{what} is not JSON: {error}") from None
    except RecursionError:  # only if the caller's own stack is already deep
        raise MalformedJson(too_deep(what, max_depth)) from None


def check_depth(text: str | bytes, *, what: str = "the body",
                max_depth: int = MAX_DEPTH) -> None:
    """Raise MalformedJson if the JSON ``text`` (or UTF-8 bytes, for a caller that
    leaves decoding to someone else) nests deeper than ``max_depth``."""
    opens = (text.count("[") + text.count("{") if isinstance(text, str)
             else text.count(b"[") + text.count(b"{"))
    # Fewer brackets than the bound cannot nest past it: most bodies stop here.
    if opens > max_depth and depth(text) > max_depth:
        raise MalformedJson(too_deep(what, max_depth))


def too_deep(what: str, max_depth: int) -> str:
    return f"{what} is JSON nested too deeply (more than {max_depth} levels)"


def depth(text: str | bytes) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do
    not count). Text that is not JSON gets some number; the decoder then refuses it.
    Works on UTF-8: no byte of a multi-byte character is a bracket or a quote."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"\\" in data:
        data = _ESCAPE.sub(b"", data)  # then every quote opens or closes a string
    outside_strings = b"".join(data.split(b'"')[::2])
    brackets = outside_strings.translate(None, _NOT_BRACKETS).decode("ascii")
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
