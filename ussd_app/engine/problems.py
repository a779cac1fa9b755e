"""What is wrong with a content tree, as field staff will read it.

Every problem names its file and line: field staff fix files, not tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from ussd_app.errors import ContentError

ERROR = "error"
WARNING = "warning"
INFO = "info"  # facts for `content check --verbose`, never a reason to fix anything


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a content tree, as field staff will read it."""

    file: str
    line: int
    message: str
    hint: str = ""
    severity: str = ERROR

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}: {self.severity}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


__all__ = ["ERROR", "INFO", "WARNING", "ContentError", "Problem"]
