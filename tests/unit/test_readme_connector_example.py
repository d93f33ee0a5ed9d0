"""The README's "Write a connector" example is the tested example package, word for
word, so the two cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "interlock-example-connector"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_the_readme_example_is_the_example_package() -> None:
    section = _section((ROOT / "README.md").read_text(), "Write a connector")
    [module] = re.findall(r"```python\n(.*?)```", section, re.S)
    assert module in (EXAMPLE / "src" / "interlock_example_connector" / "__init__.py"
                      ).read_text()
    [entry] = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert entry in (EXAMPLE / "pyproject.toml").read_text()
