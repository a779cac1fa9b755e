"""One source for every contact: ``contacts.yaml``, referenced by id from the nodes.

A number copied into two nodes goes stale in one of them (issue 16: the Qatar hotline
changed in the hotline list and not in the Qatar page). So hotlines, centres and
embassies are written once, in the directory, and a node lists them by id::

    entries:
      - contact: qa_hotline
      - contact: np_embassy_qa
        where: {en: Doha}        # name, hours and where may be replaced for this node

and a text may name a number as ``{contact:qa_hotline}``. The references are resolved
when the tree is loaded, so the engine and every channel (voice too) see plain entries.
An id that does not exist is an error at its file and line; a number written out in a
node that is also in the directory is a warning: it will not follow a change there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ussd_app.engine.files import CONTACTS_FILE
from ussd_app.engine.problems import ERROR, WARNING, Problem
from ussd_app.engine.yamlfile import locate

PLACEHOLDER = re.compile(r"\{contact:([^{}]*)\}")
# A phone number written in a text: six digits or more, maybe grouped, maybe with "+".
PHONE_IN_TEXT = re.compile(r"\+?[0-9](?:[ \-]?[0-9]){5,}")
USE_ID_HINT = "write `contact: {id}` instead of the number, so a change in contacts.yaml " \
              "reaches this node"


def digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


class Directory:
    """The contacts by id, and by their digits (to spot a number copied into a node)."""

    def __init__(self, contacts: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.contacts: Mapping[str, Mapping[str, Any]] = contacts or {}
        self.by_digits = {digits(str(c["phone"])): cid for cid, c in self.contacts.items()}

    def resolve(self, name: str, text: str, data: Mapping[str, Any],
                problems: list[Problem]) -> dict[str, Any]:
        """A node's data with its contact references replaced by the directory's entries."""
        if not self.contacts and "contact:" not in text:  # nothing to fill in or to compare
            return dict(data)
        resolved = dict(data)
        if "entries" in data:
            resolved["entries"] = self._entries(name, text, data["entries"], problems)
        for key, value in data.items():
            if key not in ("entries", "id", "type"):
                resolved[key] = self._texts(name, text, [key], value, problems)
        return resolved

    def _entries(self, name: str, text: str, entries: list[Mapping[str, Any]],
                 problems: list[Problem]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i, entry in enumerate(entries):
            own = {k: self._texts(name, text, ["entries", i, k], v, problems)
                   for k, v in entry.items()}
            ref = entry.get("contact")
            if ref is None:
                known = self.by_digits.get(digits(str(entry["phone"])))
                if known is not None:
                    problems.append(Problem(
                        name, locate(text, ["entries", i, "phone"]),
                        f"entries.{i}.phone: {entry['phone']} is contact '{known}' in "
                        f"{CONTACTS_FILE}", USE_ID_HINT.format(id=known), WARNING))
                out.append(own)
                continue
            found = self.contacts.get(ref)
            if found is None:
                problems.append(self._unknown(name, text, ["entries", i, "contact"], ref))
                continue
            out.append({**found, **own})
        return out

    def _texts(self, name: str, text: str, path: list[Any], value: Any,
               problems: list[Problem]) -> Any:
        """Texts with ``{contact:id}`` filled in; numbers copied from the directory noted."""
        if isinstance(value, Mapping):
            return {k: self._texts(name, text, [*path, k], v, problems)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._texts(name, text, [*path, i], v, problems)
                    for i, v in enumerate(value)]
        if not isinstance(value, str) or path[-1] in ("phone", "contact"):
            return value
        for number in PHONE_IN_TEXT.findall(value) if self.by_digits else ():
            known = self.by_digits.get(digits(number))
            if known is not None:
                problems.append(Problem(
                    name, locate(text, path), f"{_dotted(path)}: {number} is contact "
                    f"'{known}' in {CONTACTS_FILE}",
                    f"write {{contact:{known}}} instead of the number, so a change in "
                    f"{CONTACTS_FILE} reaches this text", WARNING))
        if "{contact:" not in value:
            return value

        def fill(found: re.Match[str]) -> str:
            contact = self.contacts.get(found.group(1))
            if contact is None:
                problems.append(self._unknown(name, text, path, found.group(1)))
                return found.group(0)
            return str(contact["phone"])

        return PLACEHOLDER.sub(fill, value)

    def _unknown(self, name: str, text: str, path: list[Any], ref: str) -> Problem:
        hint = (f"add '{ref}' to {CONTACTS_FILE} or use one of its ids"
                if self.contacts else f"add {CONTACTS_FILE} with a contact '{ref}'")
        return Problem(name, locate(text, path),
                       f"{_dotted(path)}: no contact '{ref}' in {CONTACTS_FILE}", hint, ERROR)


def _dotted(path: list[Any]) -> str:
    return ".".join(str(p) for p in path)
