"""``migrantline agencies import`` as an administrator runs it on an official list."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from .conftest import DEMO_CONTENT

BIN = Path(sys.executable).parent / "migrantline"
SOURCE = "Demo registry NP (sample)"
MAPPING = """\
columns: {licence: Licence No, name: Agency, status: Status, expires: Valid Until}
statuses: {Active: licensed, Cancelled: revoked, Suspended: suspended}
date_format: "%d/%m/%Y"
country: NP
"""
HEADER = "Licence No,Agency,Status,Valid Until\n"
ROWS = ("NP-DEMO-0001,Sunrise Himal Manpower (sample),Active,15/07/2028\n"
        "NP-DEMO-0003,Golden Gate Recruitment (sample),Cancelled,30/09/2027\n"
        "NP-DEMO-0006,Karnali Bridge Overseas (renamed),Active,22/07/2030\n"
        "NP-DEMO-0008,Mechi River Overseas (sample),Active,31/07/2026\n"
        "np demo 9001,Brand New Manpower,Active,01/01/2029\n")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    content = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, content)
    (tmp_path / "map.yaml").write_text(MAPPING, encoding="utf-8")
    return content


def run(tmp_path: Path, name: str, *extra: str, date: str = "2026-12-01",
        source: str = SOURCE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), "agencies", "import", str(tmp_path / name),
                           "--source", source, "--date", date, "--config",
                           str(tmp_path / "map.yaml"), "--content", str(tmp_path / "content"),
                           *extra], capture_output=True, text=True, timeout=60)


def registry(tree: Path) -> str:
    return (tree / "agencies.csv").read_text(encoding="utf-8")


def test_dry_run_shows_the_difference_and_writes_nothing(tmp_path: Path, tree: Path) -> None:
    (tmp_path / "list.csv").write_text(HEADER + ROWS, encoding="utf-8")
    before = registry(tree)
    out = run(tmp_path, "list.csv")
    assert out.returncode == 0, out.stderr
    assert ("new: 1\n  np demo 9001  Brand New Manpower (NP, licensed until 2029-01-01)"
            in out.stdout)
    assert "revoked: 1\n  NP-DEMO-0003" in out.stdout
    assert "renamed: 1\n  NP-DEMO-0006  Karnali Bridge Overseas Placement (sample) -> " \
           "Karnali Bridge Overseas (renamed)" in out.stdout
    assert "expired: 1\n  NP-DEMO-0008  Mechi River Overseas (sample): expired 2026-07-31" \
        in out.stdout
    assert "no longer on this list (kept): " in out.stdout
    assert "dry run: nothing was written" in out.stdout
    assert registry(tree) == before


def test_apply_writes_a_registry_the_content_check_accepts(tmp_path: Path, tree: Path) -> None:
    (tmp_path / "list.csv").write_text(HEADER + ROWS, encoding="utf-8")
    out = run(tmp_path, "list.csv", "--apply")
    assert out.returncode == 0, out.stderr
    text = registry(tree)
    assert "np demo 9001,Brand New Manpower,,NP,licensed,2029-01-01,Demo registry NP " \
           "(sample),2026-12-01" in text
    assert "NP-DEMO-0003,Golden Gate Recruitment (sample),Golden Gate HR (sample),NP,revoked," \
           "2027-09-30" in text  # other names the list does not carry are kept
    # The old name stays searchable after a rename.
    assert "Karnali Bridge Overseas (renamed),Karnali Bridge Overseas Placement (sample)" in text
    check = subprocess.run([str(BIN), "content", "check", str(tree)], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "0 error(s), 0 warning(s)" in check.stdout
    again = run(tmp_path, "list.csv")
    assert "no change" in again.stdout or "new:" not in again.stdout


@pytest.mark.parametrize(("rows", "message"), [
    (ROWS + "NP.DEMO.0001,Sunrise again,Active,01/01/2030\n",
     "list.csv:7: error: licence 'NP.DEMO.0001' is also on line 2"),
    (ROWS + "NP-DEMO-0002,Everest Path Overseas (sample),Active,2026-03-31\n",
     "list.csv:7: error: expires '2026-03-31' is not a date written %d/%m/%Y (e.g. 31/03/2027)"),
    (ROWS + "NP-DEMO-0002,Everest Path Overseas (sample),Closed,31/03/2026\n",
     "list.csv:7: error: status 'Closed' is not one of licensed, suspended, revoked"),
    (ROWS + "NP-DEMO-0002,\"Everest Path,Active,31/03/2026\n",
     "list.csv:7: error: CSV syntax"),
])
def test_a_bad_list_changes_nothing(tmp_path: Path, tree: Path, rows: str, message: str) -> None:
    (tmp_path / "list.csv").write_text(HEADER + rows, encoding="utf-8")
    before = registry(tree)
    out = run(tmp_path, "list.csv", "--apply")
    assert out.returncode == 1
    assert message in out.stderr
    assert "nothing was changed" in out.stderr
    assert registry(tree) == before


def test_a_name_in_another_script_is_imported_with_a_warning(tmp_path: Path,
                                                             tree: Path) -> None:
    (tmp_path / "list.csv").write_text(HEADER + "NP-NE-1,नयाँ म्यानपावर,Active,01/01/2029\n",
                                       encoding="utf-8")
    out = run(tmp_path, "list.csv", "--apply")
    assert out.returncode == 0, out.stderr
    assert "list.csv:2: warning: name 'नयाँ म्यानपावर' has no Latin letters" in out.stderr
    assert "NP-NE-1,नयाँ म्यानपावर,,NP,licensed,2029-01-01" in registry(tree)


def test_two_sources_on_one_agency_are_both_shown_newest_first(tmp_path: Path,
                                                                tree: Path) -> None:
    (tmp_path / "list.csv").write_text(
        HEADER + "NP-DEMO-0001,Sunrise Himal Manpower (sample),Suspended,15/07/2028\n",
        encoding="utf-8")
    out = run(tmp_path, "list.csv", "--apply", source="Labour Ministry", date="2026-12-02")
    assert out.returncode == 0, out.stderr
    assert ("also listed by another source (newest shown first): 1\n  NP-DEMO-0001  "
            "Labour Ministry 2026-12-02: suspended until 2028-07-15; "
            "Demo registry NP (sample) 2026-11-01: licensed until 2028-07-15") in out.stdout
    assert "NP-DEMO-0001,Sunrise Himal Manpower (sample)," in registry(tree)
    assert ",suspended,2028-07-15,Labour Ministry,2026-12-02" in registry(tree)
    # The first source's next list, older than the ministry's: both lines stay, and a
    # caller is served the newest and reads the other under it.
    (tmp_path / "old.csv").write_text(
        HEADER + "NP-DEMO-0001,Sunrise Himal Manpower (sample),Active,15/07/2029\n",
        encoding="utf-8")
    out = run(tmp_path, "old.csv", "--apply", date="2026-11-15")
    assert "Labour Ministry 2026-12-02: suspended until 2028-07-15; Demo registry NP " \
           "(sample) 2026-11-15: licensed until 2029-07-15" in out.stdout
    assert ",suspended,2028-07-15,Labour Ministry,2026-12-02" in registry(tree)
    assert ",licensed,2029-07-15,Demo registry NP (sample),2026-11-15" in registry(tree)
    check = subprocess.run([str(Path(sys.executable).parent / "migrantline"), "content",
                            "check", str(tree)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_callers_read_both_sources_newest_first(tmp_path: Path, tree: Path) -> None:
    from .conftest import Phone, make_app
    from .test_agencies import AGENCY_KEY, LANG_KEYS, flat, pin_today
    with (tree / "agencies.csv").open("a", encoding="utf-8") as registry_file:
        registry_file.write("NP-DEMO-0001,Sunrise Himal Manpower (sample),,NP,revoked,,"
                            "Labour Ministry,2026-12-02\n")
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(tree))
    pin_today(app)
    phone = Phone(app.test_client())
    phone.dial()
    phone.press(LANG_KEYS["en"], AGENCY_KEY)
    pages = [phone.press("NP-DEMO-0001")]
    while "98 " in pages[-1].splitlines()[-1] and len(pages) < 9:
        pages.append(phone.press("98"))
    text = flat(" ".join(pages))
    assert "Licence REVOKED. Do not pay or sign anything." in text, text
    assert "Source: Labour Ministry, data of 2026-12-02" in text
    assert "Demo registry NP (sample), data of 2026-11-01: Licensed until 2028-07-15" in text
    assert text.index("Labour Ministry") < text.index("Demo registry NP (sample), data of")
    app.extensions["migrantline"].store.close()


def xlsx(path: Path, rows: list[list[object]], merge: str = "") -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    book.save(path)


def test_xlsx_with_real_dates(tmp_path: Path, tree: Path) -> None:
    from datetime import datetime
    xlsx(tmp_path / "list.xlsx", [["Licence No", "Agency", "Status", "Valid Until"],
                                  ["NP-X-1", "Xlsx Manpower", "Active", datetime(2029, 5, 1)],
                                  ["NP-X-2", "Other Manpower", "Suspended", "01/02/2028"]])
    out = run(tmp_path, "list.xlsx", "--apply")
    assert out.returncode == 0, out.stderr
    assert "NP-X-1,Xlsx Manpower,,NP,licensed,2029-05-01" in registry(tree)
    assert "NP-X-2,Other Manpower,,NP,suspended,2028-02-01" in registry(tree)


def test_xlsx_with_merged_cells_is_refused(tmp_path: Path, tree: Path) -> None:
    xlsx(tmp_path / "list.xlsx", [["Licence No", "Agency", "Status", "Valid Until"],
                                  ["NP-X-1", "Xlsx Manpower", "Active", "01/05/2029"],
                                  ["NP-X-2", "Other Manpower", "", "01/05/2029"]],
         merge="C2:C3")
    before = registry(tree)
    out = run(tmp_path, "list.xlsx", "--apply")
    assert out.returncode == 1
    assert "list.xlsx:2: error: merged cells C2:C3 (hint: unmerge them" in out.stderr
    assert registry(tree) == before


def test_config_and_date_mistakes_are_explained(tmp_path: Path, tree: Path) -> None:
    (tmp_path / "list.csv").write_text(HEADER + ROWS, encoding="utf-8")
    (tmp_path / "map.yaml").write_text("columns: {licence: Licence, name: Agency}\n"
                                       "country: NP\n", encoding="utf-8")
    out = run(tmp_path, "list.csv")
    assert out.returncode == 1
    assert "list.csv:1: error: no column 'Licence' (for licence)" in out.stderr
    bad_date = run(tmp_path, "list.csv", date="01/12/2026")
    assert bad_date.returncode == 2
    assert "'01/12/2026' is not YYYY-MM-DD" in bad_date.stderr
