"""The README tells the truth: every setting is documented, every linked file exists."""

import re
from pathlib import Path

from gis.settings import PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```", 2)[1]
    assert "make run" in first_block and "make test" in first_block


def test_every_setting_is_documented() -> None:
    missing = [f"HUEGIS_{name.upper()}" for name in Settings.model_fields
               if f"`HUEGIS_{name.upper()}`" not in README]
    assert missing == []


def test_every_linked_file_exists() -> None:
    links = re.findall(r"\]\(([^)#\s]+)\)", README)
    assert len(links) > 10
    missing = [link for link in links if not link.startswith("http")
               and not (PROJECT_ROOT / link).exists()]
    assert missing == []


def test_every_cli_group_is_documented() -> None:
    from typer.main import get_command

    from api.cli import app

    groups = sorted(get_command(app).commands)  # type: ignore[attr-defined]
    assert [g for g in groups if f"huegis {g}" not in README] == []
    assert Path(PROJECT_ROOT / "docs" / "troubleshooting.md").exists()
