"""Check an agency: the registry file, its checks, and the search as a caller uses it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from ussd_app import store
from ussd_app.agencies.agency import Agency, country_name, fold, licence_key
from ussd_app.agencies.check import AGENCY_FILE, COLUMNS, file_version, parse_agencies
from ussd_app.agencies.index import MAX_SHOWN, NameIndex
from ussd_app.cli import main
from ussd_app.engine import messages as m
from ussd_app.engine.encoding import Limits, fits
from ussd_app.engine.loader import ERROR, read_tree
from ussd_app.i18n import default_catalogs

from .conftest import DEMO_CONTENT, Phone, make_app

TREE = read_tree(DEMO_CONTENT)
LIMITS = Limits(160, 70)
LANG_KEYS = {lang.code: str(i + 1) for i, lang in enumerate(TREE.languages)}
AGENCY_KEY = str([o.target for o in TREE.nodes["main"].options].index("check_agency") + 1)
TODAY = date(2026, 11, 23)
LANGS = ["en", "ar", "fr", "ne"]
HEADER = ",".join(COLUMNS)
_t = default_catalogs().gettext


def t(lang: str, message: str, **values: object) -> str:
    return _t(lang, message).format(**values)


def found_line(lang: str, count: int) -> str:
    """'N agencies found' in the language's plural form for N."""
    return default_catalogs().ngettext(lang, *m.AGENCY_FOUND, count).format(count=count)


def flat(text: str) -> str:
    """Whitespace and direction marks aside: pages split lines at spaces."""
    return " ".join(text.replace("\u200f", "").replace("\u200e", "").split())


def pin_today(app: Flask) -> None:
    app.extensions["migrantline"].ussd.services["agency_search"].today = lambda: TODAY


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    pin_today(app)
    yield app
    app.extensions["migrantline"].store.close()


def search(client: FlaskClient, lang: str, query: str) -> list[str]:
    """Dial, pick the language, open 'Check an agency', type the query; every page."""
    phone = Phone(client)
    phone.dial()
    phone.press(LANG_KEYS[lang])
    prompt = phone.press(AGENCY_KEY)
    assert TREE.text(TREE.nodes["check_agency"].prompt, lang) in prompt
    pages = [phone.press(query)]
    while "98 " in pages[-1].splitlines()[-1]:
        pages.append(phone.press("98"))
        assert len(pages) < 60
    for body in pages:
        assert body.startswith("CON "), body
        assert fits(body[4:], LIMITS), (lang, body)
    assert t(lang, m.NO_MORE) in phone.press("98")  # the last page says so
    return pages


def without_footer(lines: list[str]) -> list[str]:
    """A screen's lines without its footer: the keys that move (the last line) and the
    options above them, one a line ("1 Report it")."""
    lines = lines[:-1]
    while lines and re.match(r"^[1-9] ", lines[-1]):
        lines = lines[:-1]
    return lines


def read(pages: list[str]) -> str:
    """The service's text over all pages: the screen title and footers left out."""
    bodies = [without_footer(page[4:].splitlines()) for page in pages]
    bodies[0] = bodies[0][1:]
    return flat(" ".join(" ".join(lines) for lines in bodies))


def result_of(lang: str, name: str, licence: str, country: str, status: str,
              source: str, data_date: str) -> str:
    return flat(" ".join([
        name, status, f"{licence}, {country_name(country, lang)}",
        t(lang, m.AGENCY_SOURCE, source=source, date=data_date)]))


# ---------------------------------------------------------------- searching by phone


@pytest.mark.parametrize("lang", LANGS)
def test_licensed_agency_by_licence_number_typed_oddly(client: FlaskClient, lang: str) -> None:
    for query in ("np demo 0001", "Np.Demo-0001", "NP-DEMO-0001", " nP  DEMO.0001 "):
        text = read(search(client, lang, query))
        assert text == result_of(
            lang, "Sunrise Himal Manpower (sample)", "NP-DEMO-0001", "NP",
            t(lang, m.AGENCY_LICENSED, date="2028-07-15"), "Demo registry NP (sample)",
            "2026-11-01"), query


@pytest.mark.parametrize("lang", LANGS)
def test_expired_licence_is_said_so(client: FlaskClient, lang: str) -> None:
    text = read(search(client, lang, "Everest Path Overseas"))
    status = t(lang, m.AGENCY_EXPIRED, date="2026-03-31") + ". " + t(lang, m.AGENCY_DO_NOT_PAY)
    assert text == result_of(lang, "Everest Path Overseas (sample)", "NP-DEMO-0002", "NP",
                             status, "Demo registry NP (sample)", "2026-11-01")
    assert flat(t(lang, m.AGENCY_LICENSED, date="2026-03-31")) not in text


@pytest.mark.parametrize("lang", LANGS)
def test_suspended_agency(client: FlaskClient, lang: str) -> None:
    text = read(search(client, lang, "golden gate"))
    assert text.startswith("Golden Gate Recruitment (sample) " + flat(
        t(lang, m.AGENCY_SUSPENDED) + ". " + t(lang, m.AGENCY_DO_NOT_PAY)))
    assert "NP-DEMO-0003" in text


@pytest.mark.parametrize("lang", LANGS)
def test_revoked_agency(client: FlaskClient, lang: str) -> None:
    text = read(search(client, lang, "BRIGHT-FUTURE"))
    assert text.startswith("Bright Future Manpower (sample) " + flat(
        t(lang, m.AGENCY_REVOKED) + ". " + t(lang, m.AGENCY_DO_NOT_PAY)))
    revoked_without_expiry = read(search(client, lang, "ma-demo-0004"))
    assert revoked_without_expiry.startswith("Sahara Talents Conseil (sample) " + flat(
        t(lang, m.AGENCY_REVOKED)))


@pytest.mark.parametrize("lang", LANGS)
def test_misspelled_name(client: FlaskClient, lang: str) -> None:
    for query in ("sunrse himl manpowr", "Sunrise Himal Manpower Pvt. Ltd.", "sun rise himal",
                  "sunrisehimal"):
        text = read(search(client, lang, query))
        assert text.startswith("Sunrise Himal Manpower (sample)"), (query, text)
        assert "NP-DEMO-0001" in text


@pytest.mark.parametrize("lang", LANGS)
def test_no_match_warns_that_an_unlisted_agency_may_be_unlicensed(client: FlaskClient,
                                                                  lang: str) -> None:
    for query in ("qwxz vbnm", "Zzyzx Manpower", "XX-9999-ZZ"):
        assert read(search(client, lang, query)) == flat(t(lang, m.AGENCY_NO_MATCH)), query
    assert read(search(client, lang, "ab")) == flat(t(lang, m.AGENCY_TOO_SHORT))


@pytest.mark.parametrize("lang", LANGS)
def test_many_results_are_paged_with_98(client: FlaskClient, lang: str) -> None:
    pages = search(client, lang, "manpower")
    assert len(pages) > 2
    text = read(pages)
    count = sum(1 for row in _demo() if "manpower" in fold(row.name).split()
                or any("manpower" in fold(n).split() for n in row.other_names))
    assert count > MAX_SHOWN
    heading = default_catalogs().ngettext(lang, *m.AGENCY_FOUND_CLOSEST, count).format(
        count=count, shown=MAX_SHOWN)
    assert heading.count(".") + heading.count("।") >= 1  # two sentences, not run together
    assert text.startswith(flat(heading))
    for number in range(1, MAX_SHOWN + 1):
        assert f" {number}. " in text
    assert f" {MAX_SHOWN + 1}. " not in text
    assert text.count(flat(t(lang, m.AGENCY_SOURCE, source="", date="")).split()[0]) \
        == MAX_SHOWN
    assert text.endswith(flat(t(lang, m.AGENCY_NARROW)))


@pytest.mark.parametrize("lang", LANGS)
def test_names_in_other_scripts_and_accents(client: FlaskClient, lang: str) -> None:
    for query in ("societe atlas", "SOCIÉTÉ ATLAS EMPLOI", "أطلس للتشغيل", "atlas emploi"):
        text = read(search(client, lang, query))
        assert text.startswith("Société Atlas Emploi (sample)"), query
    # Found by another name: the caller sees it beside the registered one.
    assert read(search(client, lang, "सूर्योदय")).startswith(
        "Sunrise Himal Manpower (sample) / सूर्योदय म्यानपावर (नमूना) ")
    assert read(search(client, lang, "sunrise overseas")).startswith(
        "Sunrise Himal Manpower (sample) / Sunrise Overseas (sample) ")
    assert read(search(client, lang, "sunrise himal")).startswith(
        "Sunrise Himal Manpower (sample) " + flat(t(lang, m.AGENCY_LICENSED, date="2028-07-15")))


def test_licence_digits_alone_find_every_agency_with_them(client: FlaskClient) -> None:
    text = read(search(client, "en", "0004"))
    assert text.startswith("5 agencies found")
    for licence in ("NP-DEMO-0004", "MA-DEMO-0004", "PH-DEMO-0004", "BD-DEMO-0004",
                    "KE-DEMO-0004"):
        assert licence in text


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne", "lo"])
def test_one_key_from_a_result_reports_the_agency(client: FlaskClient, lang: str) -> None:
    phone = Phone(client)
    phone.dial()
    phone.press(LANG_KEYS[lang], AGENCY_KEY)
    result = phone.press("golden gate")
    report = TREE.text(TREE.nodes["check_agency"].options[0].label, lang)
    assert f"7 {report}" in result  # actions from 7: 1-5 are the agencies of a list
    assert TREE.text(TREE.nodes["report_consent"].title, lang) in phone.press("7")
    phone.hop_text("*".join(phone.inputs[:-1]))  # 99 from the result is still help now
    phone.inputs.pop()
    assert TREE.text(TREE.nodes["help_now"].title, lang) in phone.press("99")


def test_back_from_a_result_and_search_again(client: FlaskClient) -> None:
    phone = Phone(client)
    phone.dial()
    phone.press(LANG_KEYS["en"], AGENCY_KEY)
    first = phone.press("manpower")
    assert phone.press("98") != first
    assert phone.press("0") == first  # back a page
    assert TREE.text(TREE.nodes["main"].title, "en") in phone.press("0")
    phone.press(AGENCY_KEY)
    assert "Golden Gate" in phone.press("golden gate")


def test_a_retried_hop_gets_the_same_result_from_any_worker(app: Flask,
                                                            tmp_path: Path) -> None:
    phone = Phone(app.test_client())
    phone.dial()
    phone.press(LANG_KEYS["en"], AGENCY_KEY)
    first = phone.press("manpower")
    second = phone.press("98")
    assert phone.hop_text("*".join(phone.inputs[:-1])) == first
    app.extensions["migrantline"].store.flush()
    other = make_app(tmp_path)  # another worker: replays the whole text from the start
    pin_today(other)
    again = Phone(other.test_client(), number=phone.number)
    again.session = phone.session
    assert again.hop_text("*".join(phone.inputs)) == second
    other.extensions["migrantline"].store.close()


# ---------------------------------------------------------------- the registry file


def _demo() -> list[Agency]:
    rows, problems = parse_agencies((DEMO_CONTENT / "agencies.csv").read_bytes())
    assert problems == []
    return rows


def test_demo_registry_is_plainly_fictitious_and_mixed() -> None:
    rows = _demo()
    assert len(rows) >= 150
    assert all("(sample)" in row.name for row in rows)
    assert all("-DEMO-" in row.licence for row in rows)
    assert {"NP", "MA"} < {row.country for row in rows}
    statuses = {row.status for row in rows}
    assert statuses == {"licensed", "suspended", "revoked"}
    assert sum(1 for row in rows if row.expired(TODAY)) >= 5
    assert sum(1 for row in rows if row.status == "licensed" and not row.expired(TODAY)) >= 50


def test_registry_is_stored_under_its_version(app: Flask) -> None:
    services = app.extensions["migrantline"]
    version = file_version((DEMO_CONTENT / "agencies.csv").read_bytes())
    assert [v["version"] for v in store.agency_versions(services.store)] == [version]
    rows = store.agencies_by_licence_key(services.store, version, [licence_key("np demo 0001")])
    assert [row["name"] for row in rows] == ["Sunrise Himal Manpower (sample)"]
    assert len(store.agency_names(services.store, version)) == len(_demo())


GOOD_LINE = "NP-T-1,Test Agency (sample),,NP,licensed,2027-01-31,Test registry,2026-11-01"
LINE_2 = GOOD_LINE.replace("T-1", "T-2")


@pytest.mark.parametrize(("data", "line", "message"), [
    (HEADER.replace(",status", "") + "\nNP-T-1,Test,,NP,2027-01-31,Test,2026-11-01\n", 1,
     "missing column 'status'"),
    (f"{HEADER}\n{GOOD_LINE}\n{GOOD_LINE.replace('T-1', 'T-2')}\n".encode() +
     b"NP-T-3,Caf\xe9 Agency,,NP,licensed,2027-01-31,Test,2026-11-01\n", 4,
     "text is not valid UTF-8"),
    (b"\xef\xbb\xbf" + f"{HEADER}\n{GOOD_LINE}\n".encode(), 1,
     "file starts with a byte-order mark (BOM)"),
    (f"{HEADER}\n{GOOD_LINE}\n{LINE_2.replace('2027-01-31', '31/01/2027')}\n",
     3, "expires '31/01/2027' is not a date"),
    (f"{HEADER}\n{GOOD_LINE}\n\n{LINE_2.replace('licensed', 'licenced')}\n",
     4, "status 'licenced' is not one of licensed, suspended, revoked"),
    (f"{HEADER}\n{GOOD_LINE}\n{GOOD_LINE.replace('NP-T-1', 'np t 1')}\n", 3,
     "licence 'np t 1' is also on line 2"),
    (f"{HEADER}\n{GOOD_LINE.replace('Test Agency (sample)', '')}\n", 2, "name is empty"),
    (f"{HEADER}\n{GOOD_LINE.replace('2026-11-01', '2026-13-01')}\n", 2,
     "data_date '2026-13-01' is not a date"),
    (f"{HEADER}\n{GOOD_LINE.replace(',NP,', ',Nepal,')}\n", 2,
     "country 'Nepal' is not a country code"),
    (f"{HEADER}\n{GOOD_LINE}\n\"NP-T-2,Test\n{GOOD_LINE.replace('T-1', 'T-3')}\n", 3,
     "is never closed"),
    (f"{HEADER}\n{GOOD_LINE},extra\n", 2, "9 fields, the header has 8"),
    ("", 1, "file is empty"),
    # one licence written two ways (case, punctuation, leading zeros): a duplicate
    (f"{HEADER}\n{GOOD_LINE}\n{GOOD_LINE.replace('NP-T-1', 'np t 01')}\n", 3,
     "licence 'np t 01' is also on line 2"),
    # a date in another format is refused with the format to use, nothing guessed
    (f"{HEADER}\n{GOOD_LINE.replace('2026-11-01', '01/11/2026')}\n", 2,
     "data_date '01/11/2026' is not a date"),
])
def test_a_bad_registry_file_gets_file_and_line(tmp_path: Path, data: str | bytes, line: int,
                                                message: str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    rows, problems = parse_agencies(raw)
    errors = [p for p in problems if p.severity == ERROR]
    assert errors and errors[0].file == "agencies.csv", problems
    assert (errors[0].line, message in errors[0].message) == (line, True), errors
    assert errors[0].hint
    tree = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, tree)
    (tree / "agencies.csv").write_bytes(raw)
    result = CliRunner().invoke(main, ["content", "check", str(tree)])
    assert result.exit_code == 1, result.output
    assert f"{tree}/agencies.csv:{line}: error: " in result.output
    assert message in result.output


def test_an_unknown_column_is_only_a_warning() -> None:
    rows, problems = parse_agencies(f"{HEADER},notes\n{GOOD_LINE},call first\n".encode())
    assert [(p.line, p.severity) for p in problems] == [(1, "warning")]
    assert [row.licence for row in rows] == ["NP-T-1"]


def test_the_demo_tree_checks_clean() -> None:
    result = CliRunner().invoke(main, ["content", "check", str(DEMO_CONTENT)])
    assert result.exit_code == 0, result.output
    assert "agencies.csv" not in result.output


def test_a_bad_registry_is_never_served(tmp_path: Path) -> None:
    tree = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, tree)
    csv_path = tree / "agencies.csv"
    good = csv_path.read_text(encoding="utf-8")
    csv_path.write_text(good.replace("2028-07-15", "15/07/2028"), encoding="utf-8")
    refused = make_app(tmp_path / "refused", MIGRANTLINE_CONTENT_DIR=str(tree))
    services = refused.extensions["migrantline"]
    assert services.content.current is None
    assert "agencies.csv:2" in str(services.content.error)
    assert store.agency_versions(services.store) == []
    phone = Phone(refused.test_client())
    assert phone.dial().startswith("END ")
    services.store.close()

    csv_path.write_text(good, encoding="utf-8")
    app = make_app(tmp_path / "served", MIGRANTLINE_CONTENT_DIR=str(tree))
    pin_today(app)
    services = app.extensions["migrantline"]
    client = app.test_client()
    assert read(search(client, "en", "sunrise himal")).startswith("Sunrise Himal")
    # An edit with an error: the tree and the registry served so far stay.
    csv_path.write_text(good.replace("Sunrise Himal Manpower", "Moonrise Himal Manpower")
                        .replace("NP-DEMO-0002,", "NP-DEMO-0002 broken,,"), encoding="utf-8")
    assert services.content.load() is False
    assert "agencies.csv:3" in str(services.content.error)
    assert read(search(client, "en", "sunrise himal")).startswith("Sunrise Himal")
    assert read(search(client, "en", "moonrise")) == flat(t("en", m.AGENCY_NO_MATCH))
    # Fixed: the new registry is served.
    csv_path.write_text(good.replace("Sunrise Himal Manpower", "Moonrise Himal Manpower"),
                        encoding="utf-8")
    assert services.content.load() is True
    assert read(search(client, "en", "moonrise")).startswith("Moonrise Himal Manpower")
    services.store.close()


def test_a_tree_without_a_registry_says_the_list_is_unavailable(tmp_path: Path) -> None:
    tree = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, tree)
    (tree / "agencies.csv").unlink()
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(tree))
    text = read(search(app.test_client(), "fr", "sunrise"))
    assert text == flat(t("fr", m.AGENCY_UNAVAILABLE))
    app.extensions["migrantline"].store.close()


# ---------------------------------------------------------------- matching


def test_fold_and_licence_key() -> None:
    assert fold("Société  Atlas-Emploi (SAMPLE)") == "societe atlas emploi sample"
    assert fold("أَطْلَس للتشغيلة") == "اطلس للتشغيله"
    assert fold("सूर्योदय ३") == "सूर्योदय 3"
    assert licence_key(" np.Demo-0001 ") == licence_key("NP-DEMO-0001") == "npdemo0001"


def test_name_index_ranks_the_closest_name_first() -> None:
    index = NameIndex("test", [
        ("a", ["Sunrise Himal Manpower"]), ("b", ["Sunset Himal Manpower"]),
        ("c", ["Himal Star Overseas"]), ("d", ["Golden Sunrise Manpower"]),
        *((f"x{i}", [f"Filler{i} Manpower"]) for i in range(60)),
    ])
    assert [key for key, _ in index.search("sunrise himal")[0]] == ["a"]
    assert sorted(key for key, _ in index.search("sunrise")[0]) == ["a", "d"]
    assert [key for key, _ in index.search("sunrse")[0]][:2] in (["a", "d"], ["d", "a"])
    assert index.search("sunrise himal manpower")[0][0][0] == "a"
    assert index.search("sunset")[0][0][0] == "b"
    assert index.search("zzzz manpower") == ([], 0)
    ranked, count = index.search("manpower")
    assert count == 63 and len(ranked) == MAX_SHOWN * 4


def test_type_a_new_name_on_a_result_to_search_again(client: FlaskClient) -> None:
    phone = Phone(client)
    phone.dial()
    phone.press(LANG_KEYS["en"], AGENCY_KEY)
    phone.press("golden gate")
    again = phone.press("NP-DEMO-0004")
    assert "NP-DEMO-0004" in again
    assert "Golden Gate" not in again or "NP-DEMO-0004" in again.split("\n")[1]


def test_concurrent_loads_of_one_registry_store_it_once(tmp_path: Path) -> None:
    """Workers starting together load the same file at the same moment: none may fail."""
    import threading

    data = (DEMO_CONTENT / AGENCY_FILE).read_bytes()
    rows, problems = parse_agencies(data)
    assert not problems
    store.open_store(tmp_path).close()  # migrated: each load below opens it as a node does
    errors: list[BaseException] = []
    stored: list[bool] = []

    def load() -> None:
        try:
            mine = store.open_store(tmp_path)  # its own connection, as another node has
            stored.append(store.store_agencies(mine, (a.record() for a in rows), "v1",
                                               "agencies.csv"))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(stored) == [False] * 5 + [True]
    check = store.open_store(tmp_path)
    assert [v["version"] for v in store.agency_versions(check)] == ["v1"]
    assert len(store.agency_names(check, "v1")) == len(rows)
