"""How the README's test reads the README: blocks, directives, masks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.readme import blocks, contains_in_order, mask, steps

README = """
Paste this:

```sh
echo hi
```
```
hi
```

<!-- readme-test: skip needs a real Jira -->
```sh
curl https://jira.example
```

<!-- readme-test: eventually -->
```sh
api /things
```
```json
{"id": "inc_01M83BRS5Y03AGDC0ABMSPVB4S"}
```

```yaml
not: run
```
"""


def test_shell_blocks_take_the_output_fence_right_after_them(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text(README)
    planned = steps(path)
    assert [(step.kind, step.block.line) for step in planned] == [
        ("run", 4), ("skip", 12), ("run", 17)]
    assert planned[0].expected == "hi\n"
    assert planned[1].block.argument == "needs a real Jira"
    assert planned[2].eventually and planned[2].expected is not None


def test_an_unknown_directive_is_an_error_not_a_silent_run() -> None:
    with pytest.raises(ValueError, match=r"README\.md:2"):
        blocks("\n<!-- readme-test: skipp typo -->\n```sh\ntrue\n```\n")


def test_masks_keep_which_id_is_which() -> None:
    readme = "evt_01M83CE2DTQBY9Q7JA6DNQ76DJ then evt_01M83CE2G8ZF46SYBQF4FX5CZW"
    same_order = "evt_01M8NYD5ZB2KVZCJQDJ1DYS63E then evt_01M8NYD60000000000000000AB"
    swapped = "evt_01M8NYD60000000000000000AB then evt_01M8NYD60000000000000000AB"
    assert mask(readme) == mask(same_order) == "<evt#1> then <evt#2>"
    assert mask(swapped) != mask(readme)  # one message twice is not two messages


def test_masks_hide_times_secrets_and_lengths() -> None:
    line = ('2026-11-23T05:00:37.256729Z ilk_MWyhlmEpXiRDXYPWKE-C8sf6WIAMm8WIGzzHmTmuguc '
            'content-length: 353 7 ms retry at 05:00:41')
    assert mask(line) == "<time> ilk_<secret> content-length: <n> <n> ms retry at <time>"


def test_output_of_a_process_may_have_more_lines_between() -> None:
    assert contains_in_order("a\nnoise\nb\nc", "a\nb")
    assert not contains_in_order("b\na", "a\nb")
