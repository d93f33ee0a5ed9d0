"""Reading untrusted JSON with a bound on how deeply it nests.

Python's ``json`` recurses once per level: a body of 100,000 ``[`` raises
RecursionError (a 500 wherever nobody catches it), and a value a few hundred levels deep
that does decode can still exhaust the stack later, when it is walked, copied or encoded
again. No monitoring tool, Jira or Slack nests anywhere near :data:`MAX_DEPTH`, so a
deeper document is refused before it is decoded, with a message that says so.

The depth is counted on the text with brackets inside strings removed, in C-speed
passes (``re``, ``itertools``), so the check costs little next to the decoding itself.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from interlock.domain.errors import MalformedJson

#: Deepest nesting of arrays and objects accepted (``[[1]]`` is 2).
MAX_DEPTH = 64
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def loads(data: bytes | str, *, what: str = "the body", max_depth: int = MAX_DEPTH) -> Any:
    """The decoded JSON value of ``data`` (bytes in any encoding ``json`` detects).

    Raises MalformedJson (a 400) when it is not JSON, naming ``what``, or when it nests
    deeper than ``max_depth``."""
    try:
        text = (data.decode(json.detect_encoding(data), "surrogatepass")
                if isinstance(data, bytes) else data)
    except UnicodeDecodeError as error:
        raise MalformedJson(f"{what} is not JSON: {error}") from None
    # Fewer brackets than the bound cannot nest past it: most bodies stop here.
    if text.count("[") + text.count("{") > max_depth and depth(text) > max_depth:
        raise MalformedJson(f"{what} is JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except ValueError as error:
        raise MalformedJson(f"{what} is not JSON: {error}") from None
    except RecursionError:  # only if the caller's own stack is already deep
        raise MalformedJson(f"{what} is JSON nested too deeply to read") from None


def depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do
    not count). Text that is not JSON gets some number; the decoder then refuses it."""
    brackets = _BRACKET.findall(_STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)
