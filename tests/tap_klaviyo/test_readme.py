"""The README documents every setting exactly as the tap describes itself."""

from __future__ import annotations

from scripts.readme_settings import README, readme_table, settings_table


def test_readme_settings_table_matches_about():
    assert readme_table(README.read_text()) == settings_table(), (
        "README settings are stale: run `python scripts/readme_settings.py`"
    )
