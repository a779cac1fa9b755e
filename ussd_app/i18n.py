"""Interface strings in the caller's language, from the gettext catalogs.

Catalogs are read from the ``.po`` files and compiled in memory at start-up,
so a deployment can never serve a stale ``.mo``; ``pybabel compile`` still
works for tools that want the files. A language without a catalog falls back
to the English msgids, and ``missing()`` says so for the health check.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"


class Catalogs:
    def __init__(self, directory: Path = TRANSLATIONS_DIR):
        self.directory = directory
        self._loaded: dict[str, NullTranslations] = {}

    def _load(self, lang: str) -> NullTranslations:
        po = self.directory / lang / "LC_MESSAGES" / "messages.po"
        if not po.exists():
            return NullTranslations()
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return Translations(buffer)

    def get(self, lang: str) -> NullTranslations:
        found = self._loaded.get(lang)
        if found is None:
            found = self._loaded[lang] = self._load(lang)
        return found

    def gettext(self, lang: str, message: str) -> str:
        return self.get(lang).gettext(message)

    def ngettext(self, lang: str, singular: str, plural: str, n: int) -> str:
        """The form for ``n`` under the language's plural rule (Arabic has six)."""
        return self.get(lang).ngettext(singular, plural, n)

    def missing(self, languages: tuple[str, ...]) -> list[str]:
        """Languages (other than English) that have no catalog."""
        return [lang for lang in languages
                if lang != "en" and not isinstance(self.get(lang), Translations)]


@lru_cache(maxsize=1)
def default_catalogs() -> Catalogs:
    return Catalogs()
