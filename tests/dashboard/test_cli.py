"""``migrantline operators``: add, list, disable, enable, password; exit codes per SPEC."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from tests.conftest import TEST_SECRET
from ussd_app.cli import main


def run(tmp_path: Path, *args: str, stdin: str = "") -> tuple[int, str]:
    env = {"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"), "MIGRANTLINE_SECRET_KEY": TEST_SECRET}
    result = CliRunner().invoke(main, ["operators", *args], input=stdin, env=env)
    return result.exit_code, result.output


def test_add_list_disable_and_enable(tmp_path: Path) -> None:
    code, out = run(tmp_path, "add", "Boss@Example.org", "--role", "supervisor",
                    "--name", "Mina", stdin="a long enough password\n")
    assert code == 0 and "supervisor boss@example.org added" in out and "/operator/" in out
    code, out = run(tmp_path, "list")
    assert code == 0 and "boss@example.org" in out and "supervisor" in out and "active" in out
    assert run(tmp_path, "disable", "boss@example.org")[0] == 0
    assert "disabled" in run(tmp_path, "list")[1]
    assert run(tmp_path, "enable", "boss@example.org")[0] == 0
    code, out = run(tmp_path, "password", "boss@example.org", stdin="another long password\n")
    assert code == 0 and "changed" in out


def test_problems_exit_1_and_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run(tmp_path, "list")[1].startswith("no operators yet")
    code, out = run(tmp_path, "add", "a@example.org", "--role", "operator", stdin="short\n")
    assert code == 1 and "at least 10 characters" in out
    code, out = run(tmp_path, "add", "a@example.org", "--role", "operator")
    assert code == 1 and "no password on standard input" in out
    code, out = run(tmp_path, "add", "not-an-email", "--role", "operator",
                    stdin="a long enough password\n")
    assert code == 1 and "not an email address" in out
    assert run(tmp_path, "add", "a@example.org", "--role", "operator",
               stdin="a long enough password\n")[0] == 0
    code, out = run(tmp_path, "add", "a@example.org", "--role", "operator",
                    stdin="a long enough password\n")
    assert code == 1 and "exists already" in out
    assert run(tmp_path, "add", "b@example.org", "--role", "admin")[0] == 2
    assert run(tmp_path, "disable", "nobody@example.org")[0] == 1
