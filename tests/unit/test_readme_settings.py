"""Every setting has its row in the README's tables: a newcomer configures Interlock
from there."""

from __future__ import annotations

import re
from pathlib import Path

from interlock.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_has_a_row_in_the_readme() -> None:
    """A row names the setting in its first cell (`INTERLOCK_NAME`, or two related
    ones: `INTERLOCK_SMTP_USERNAME` / `INTERLOCK_SMTP_PASSWORD`), then its default."""
    rowed = {name for line in README.read_text().splitlines() if line.startswith("| `")
             for name in re.findall(r"`INTERLOCK_([A-Z0-9_]+)`", line.split(" | ")[0])}
    missing = [f"INTERLOCK_{name.upper()}" for name in Settings.model_fields
               if name.upper() not in rowed]
    assert not missing, f"settings without a row in the README: {missing}"
