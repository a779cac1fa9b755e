"""The README documents every setting and command, and its commands work."""

from __future__ import annotations

import re

from click.testing import CliRunner

from ussd_app.cli import main
from ussd_app.settings import SETTINGS

from .conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    for setting in SETTINGS:
        assert f"`{setting.name}`" in README, setting.name


def test_readme_first_screen_gives_the_two_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:15])
    assert "make run" in first_screen and "make test" in first_screen
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_every_documented_command_has_help() -> None:
    runner = CliRunner()
    commands = set(re.findall(r"^\| `migrantline ([a-z]+(?: [a-z]+)?)", README, re.M))
    assert {"serve", "simulate", "content check"} <= commands
    for command in commands:
        result = runner.invoke(main, [*command.split(), "--help"])
        assert result.exit_code == 0, command
        assert "Usage:" in result.output


CODE_PATH = re.compile(r"`((?:ussd_app|sms_flows|voice_prompts|tests|bench|deploy)/[\w/.\-]*)`")


def test_every_code_path_the_docs_name_exists() -> None:
    """A moved module leaves no reader looking for it: every source path in the README and
    docs/ (in backticks) is in the tree."""
    pages = [ROOT / "README.md", ROOT / "bench" / "README.md",
             *sorted((ROOT / "docs").glob("*.md"))]
    missing = [f"{page.relative_to(ROOT)}: {path}" for page in pages
               for path in CODE_PATH.findall(page.read_text())
               if not (ROOT / path.rstrip("/")).exists()]
    assert not missing, missing
    assert CODE_PATH.findall("see `ussd_app/voice_calls.py` and `ussd_app/web.py`") == [
        "ussd_app/voice_calls.py", "ussd_app/web.py"]
