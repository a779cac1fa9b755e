"""Content files read from a folder, and their bytes decoded as checked text.

Shared by every kind of content file (YAML nodes, the agency CSV), so an
oversized file, a byte-order mark or a bad byte gets the same message with
its line wherever it is.
"""

from __future__ import annotations

import re
from pathlib import Path

from ussd_app.engine.problems import Problem

MAX_FILE_BYTES = 1_000_000
SITE_FILE = "site.yaml"
CONTACTS_FILE = "contacts.yaml"  # the contact directory (``engine.contacts``), optional
NODES_DIR = "nodes"


def read_files(root: Path) -> dict[str, bytes]:
    """All content files under ``root`` as bytes, keyed by POSIX relative path.

    Oversized files are read only up to the limit plus one byte: enough for
    the check to refuse them without holding a 5 MB mistake in memory.
    """
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        rel = path.relative_to(root).as_posix()
        if not (rel in (SITE_FILE, CONTACTS_FILE) or rel.startswith(NODES_DIR + "/")):
            continue
        with path.open("rb") as fh:
            files[rel] = fh.read(MAX_FILE_BYTES + 1)
    return files


def decode_text(name: str, data: bytes, problems: list[Problem],
                max_bytes: int = MAX_FILE_BYTES,
                too_big_hint: str = "split a long article into several articles") -> str | None:
    """Text of a content file, or None with the reason added to ``problems``.

    Shared by every kind of content file (YAML nodes, the agency CSV), so a
    byte-order mark or a bad byte gets the same message with its line
    wherever it is.
    """
    if len(data) > max_bytes:
        size = f"{max_bytes // 1_000_000} MB" if max_bytes >= 1_000_000 * 10 else \
            f"{max_bytes // 1000} kB"
        problems.append(Problem(name, 1, f"file is larger than {size}", too_big_hint))
        return None
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        problems.append(Problem(name, 1, "file starts with a byte-order mark (BOM)",
                                "save the file as UTF-8 without BOM"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problems.append(Problem(name, line, "text is not valid UTF-8",
                                "save the file with UTF-8 encoding"))
        return None
    lone = re.search(r"(?<!\r)\n", text)
    if "\r\n" in text and lone:
        problems.append(Problem(name, text[: lone.start()].count("\n") + 1,
                                "mixed line endings (Windows and Unix)",
                                "save the file with one kind of line ending"))
        return None
    if "\x00" in text:
        problems.append(Problem(name, text[: text.index("\x00")].count("\n") + 1,
                                "file contains a NUL character", "is this a text file?"))
        return None
    return text.replace("\r\n", "\n")
