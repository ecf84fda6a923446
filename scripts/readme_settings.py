"""Write the README's settings table from `tap-klaviyo --about --format=markdown` (run after changing a setting)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- settings:start[^\n]*-->\n)(.*?)(<!-- settings:end -->)", re.DOTALL)


def settings_table() -> str:
    """The settings table exactly as the tap documents itself."""
    about = subprocess.run(
        [sys.executable, "-m", "tap_klaviyo", "--about", "--format=markdown"],
        capture_output=True, text=True, check=True,
    ).stdout
    table = about.split("## Settings", 1)[1].split("A full list of supported settings", 1)[0]
    return table.strip() + "\n"


def readme_table(text: str) -> str:
    return BLOCK.search(text).group(2)


if __name__ == "__main__":
    text = README.read_text()
    README.write_text(BLOCK.sub(lambda m: m.group(1) + settings_table() + m.group(3), text))
