"""Every exception the service raises on purpose, in one tree.

Each is converted at its edge: a handset hears or reads a short apology in
its language, never a traceback; the dashboard flashes the message; the CLI
turns it into ``click.ClickException(str(exc))``; a worker stores it on the
row it was working on. The message is what the person fixing it reads, so it
says what happened and, where it can, what to do.

    MigrantLineError
     ├── ContentError        a content tree has errors and must not be served
     ├── FitError            content that no cutting makes fit one screen
     ├── ProviderError       a provider (SMS, voice, a recording's host) did not do it;
     │                         ``temporary``: trying again later may help
     │    └── TransportError   no HTTP answer at all (timeout, refused connection)
     ├── SyncError           a content sync cannot go on; ``code`` is the CLI exit code
     ├── BundleError         a content bundle cannot be written or read
     ├── NotFound            (a LookupError) no such complaint, no stored recording
     ├── Conflict            a unique value is taken (a complaint reference, an email)
     ├── NotAllowed          the person said no (do not contact me)
     ├── InvalidInput        something the person must fix (an account's fields, a body)
     ├── ConfigError         (a ValueError) a setting is unusable (a weak secret key)
     ├── Unreadable          a stored value does not open with the key given
     └── AudioError          (a RuntimeError) prompt audio could not be made

This module imports nothing of the service: the engine, the store and every
channel may raise from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class MigrantLineError(Exception):
    """The root: anything the service raises on purpose."""


class _Problem(Protocol):
    @property
    def severity(self) -> str: ...


class ContentError(MigrantLineError):
    """A tree has errors and must not be served."""

    def __init__(self, problems: Sequence[_Problem]):
        self.problems = list(problems)
        errors = [p for p in problems if p.severity == "error"]
        first = str(errors[0]) if errors else "no error"
        super().__init__(f"{len(errors)} error(s) in content; first: {first}")


class FitError(MigrantLineError):
    """Content that cannot be shown on one screen however it is cut."""


class ProviderError(MigrantLineError):
    """The provider did not do what was asked; ``temporary`` if a retry may work.

    Temporary: no answer (timeouts, refused connections), 5xx, 429, and what
    the provider itself calls a passing state. Permanent: what no retry will
    change (an invalid number, a 4xx the provider documents as final, a URL the
    service will never fetch).
    """

    def __init__(self, message: str, temporary: bool = True):
        super().__init__(message)
        self.temporary = temporary


class TransportError(ProviderError):
    """No HTTP answer: ``reason`` names what happened (``ReadTimeout``, ``ConnectionError``)."""

    def __init__(self, reason: str):
        super().__init__(reason, temporary=True)
        self.reason = reason


class SyncError(MigrantLineError):
    """A sync cannot go on; the message says what happened and what to do."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class BundleError(MigrantLineError):
    """A bundle cannot be written or read; the message says what to do."""


class NotFound(MigrantLineError, LookupError):
    """No such thing (a complaint with that id, stored audio with that id)."""


class Conflict(MigrantLineError):
    """A value that must be unique is taken already."""


class NotAllowed(MigrantLineError):
    """The person concerned said no (e.g. not to be contacted)."""


class InvalidInput(MigrantLineError):
    """Something the person asking must fix; the message says what."""


class ConfigError(MigrantLineError, ValueError):
    """A setting is unusable; the message says how to fix it."""


class Unreadable(MigrantLineError):
    """A stored value does not open with the key given."""


class AudioError(MigrantLineError, RuntimeError):
    """Audio could not be made; the message says why and what to do."""
