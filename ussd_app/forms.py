"""A URL-encoded form body as ``(name, value)`` pairs, as ``urllib.parse.parse_qsl``
reads it with ``keep_blank_values=True``: the same pairs, at a third of its cost.

Why: a USSD hop and a voice webhook are a few short fields, and ``parse_qsl``'s
calls per field (two ``unquote``s, a coercion each) cost more than some whole
steps of the menu engine (bench/README.md). Fields without ``%`` or ``+``, nearly
all of them, are taken as they are; the rest go through ``unquote`` as before.
Equivalence with ``parse_qsl`` is tested on random bodies (tests/test_forms.py).
"""

from __future__ import annotations

from urllib.parse import unquote


def _decoded(part: str, errors: str) -> str:
    if "+" in part:
        part = part.replace("+", " ")
    return unquote(part, errors=errors) if "%" in part else part


def parse_form(body: str, errors: str = "replace") -> list[tuple[str, str]]:
    """``parse_qsl(body, keep_blank_values=True, errors=errors)``."""
    pairs = []
    for field in body.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        pairs.append((_decoded(name, errors), _decoded(value, errors)))
    return pairs


class Form(dict[str, str]):
    """A parsed form or query: each name's first value, as Werkzeug's ``MultiDict.get``
    gives it, and all of them by ``getlist`` (what Twilio's signature check reads).

    Why not a ``MultiDict``: its ``get`` of an absent field raises and catches an
    exception, and a webhook asks for half a dozen fields a provider left out.
    """

    def __init__(self, pairs: list[tuple[str, str]]):
        super().__init__()
        self._pairs = pairs
        for name, value in pairs:
            self.setdefault(name, value)

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key == name]
