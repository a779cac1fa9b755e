"""What is wrong with a content tree, as field staff will read it.

Every problem names its file and line: field staff fix files, not tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass

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


class ContentError(Exception):
    """A tree has errors and must not be served."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.severity == ERROR]
        first = str(errors[0]) if errors else "no error"
        super().__init__(f"{len(errors)} error(s) in content; first: {first}")
