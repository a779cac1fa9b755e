"""The gettext catalogs: complete in every shipped language, plural forms right, compiled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from ussd_app.engine import messages as m
from ussd_app.engine.loader import read_tree
from ussd_app.i18n import TRANSLATIONS_DIR, Catalogs

from .conftest import DEMO_CONTENT, ROOT

SHIPPED = [c for c in read_tree(DEMO_CONTENT).language_codes if c != "en"]


@pytest.mark.parametrize("lang", SHIPPED)
def test_catalog_is_complete_and_not_fuzzy(lang: str) -> None:
    path = TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    template = {msg.id for msg in read_po((TRANSLATIONS_DIR / "messages.pot").open("rb"))
                if msg.id}
    assert {msg.id for msg in catalog if msg.id} == template
    for message in catalog:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{lang}: untranslated {message.id!r}"
        if "{" in str(message.id):  # placeholders survive translation
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            wanted = {p for i in ids for p in ("{key}", "{label}", "{count}", "{shown}",
                                               "{date}", "{source}") if p in i}
            for text in strings:
                assert {p for p in wanted if p in text} <= wanted


def test_catalogs_match_the_code(tmp_path: Path) -> None:
    """Every message the code marks is in the template: `make catalogs` was run."""
    pot = tmp_path / "extracted.pot"
    subprocess.run(
        [str(Path(sys.executable).parent / "pybabel"), "extract", "-F", "pyproject.toml",
         "-k", "N_", "-k", "NP_:1,2", "--no-location", "--sort-output", "-o", str(pot), "."],
        cwd=ROOT, capture_output=True, text=True, check=True)
    out = pot.read_text()
    extracted = {line[len('msgid "'):-1] for line in out.splitlines() if line.startswith("msgid ")}
    template = (TRANSLATIONS_DIR / "messages.pot").read_text()
    for msgid in extracted - {""}:
        assert f'msgid "{msgid}"' in template, msgid


def test_arabic_has_six_plural_forms() -> None:
    catalogs = Catalogs()
    forms = [catalogs.ngettext("ar", *m.AGENCY_FOUND, n).format(count=n)
             for n in (0, 1, 2, 3, 11, 100)]
    assert len(set(forms)) == 6, forms
    assert forms[1] == "وجدت وكالة واحدة" and forms[2] == "وجدت وكالتان"
    assert forms[3] == "وجدت 3 وكالات" and forms[4] == "وجدت 11 وكالة"


def test_french_and_nepali_plurals_follow_their_rules() -> None:
    catalogs = Catalogs()
    assert catalogs.ngettext("fr", *m.AGENCY_FOUND, 0).format(count=0) == "0 agence trouvée"
    assert catalogs.ngettext("fr", *m.AGENCY_FOUND, 2).format(count=2) == "2 agences trouvées"
    assert catalogs.ngettext("en", *m.AGENCY_FOUND, 1).format(count=1) == "1 agency found"
    assert catalogs.ngettext("ne", *m.AGENCY_FOUND, 5).format(count=5).startswith("5 ")


def test_bengali_and_amharic_have_two_forms_with_zero_singular() -> None:
    """CLDR: bn and am say "one" for 0 and 1 (i = 0 or n = 1): Plural-Forms (n > 1)."""
    catalogs = Catalogs()
    for lang in ("bn", "am"):
        with (TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
            assert read_po(fh, locale=lang).plural_expr == "(n > 1)"
    assert catalogs.ngettext("am", *m.AGENCY_FOUND, 0).format(count=0) == "0 ኤጀንሲ ተገኝቷል"
    assert catalogs.ngettext("am", *m.AGENCY_FOUND, 1).format(count=1) == "1 ኤጀንሲ ተገኝቷል"
    assert catalogs.ngettext("am", *m.AGENCY_FOUND, 5).format(count=5) == "5 ኤጀንሲዎች ተገኝተዋል"
    assert catalogs.ngettext("bn", *m.AGENCY_FOUND, 5).format(count=5) == "5টি এজেন্সি পাওয়া গেছে"


def test_compiled_catalogs_are_not_stale() -> None:
    """The install and test commands compile the catalogs; none is older than its source."""
    for lang in SHIPPED:
        po = TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po"
        mo = po.with_suffix(".mo")
        assert mo.exists(), f"{mo} missing: run make setup"
        assert mo.stat().st_mtime >= po.stat().st_mtime, f"{mo} is stale: run make setup"
