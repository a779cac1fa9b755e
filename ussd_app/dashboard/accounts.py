"""Operator accounts: argon2 passwords, sign-in with rate limit and lock-out.

No Flask here: the ``migrantline operators`` command and the dashboard's
sign-in page share this. A locked account or address is refused before its
password is even checked, so guessing stops at the limit; an unknown email
costs the same hash as a known one, so timing does not tell which exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ussd_app import settings
from ussd_app.errors import InvalidInput
from ussd_app.store import Store
from ussd_app.store import operators as db

ROLES = ("operator", "supervisor", "partner")
MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
KEEP_ATTEMPTS_SECONDS = 7 * 86400


class AccountError(InvalidInput):
    """Something the person adding or changing an account must fix (the message says what)."""


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt found. ``result``: ok, bad (wrong email or password, or a
    disabled account: one answer for all) or locked."""

    result: str
    operator: dict[str, Any] | None = None


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Accounts:
    def __init__(self, store: Store, config: settings.Config,
                 clock: Callable[[], float] = time.time,
                 hasher: PasswordHasher | None = None, secret: bytes | None = None):
        self.store, self.clock = store, clock
        self.hasher = hasher or PasswordHasher()
        config = settings.of(config)
        if secret is None:
            secret = settings.secret_key(config, config.data_dir)
        self._email_key = hmac.new(secret, b"migrantline sign-in email v1",
                                   hashlib.sha256).digest()
        self.max_failures = config.login_max_failures
        self.ip_max_failures = config.login_ip_max_failures
        self.lock_seconds = 60 * config.login_lock_minutes
        self._dummy = ""  # a hash to check unknown emails against; made at the first need

    # -------------------------------------------------------- managing

    def add(self, email: str, role: str, password: str, name: str = "",
            partner_id: int | None = None) -> int:
        """A partner user (``role="partner"``) belongs to one partner organisation and sees
        only the cases referred to it; staff belong to none."""
        email = normalise_email(email)
        if not _EMAIL.match(email):
            raise AccountError(f"{email!r} is not an email address")
        if role not in ROLES:
            raise AccountError(f"the role must be {', '.join(ROLES)}, not {role!r}")
        if (role == "partner") != (partner_id is not None):
            raise AccountError("a partner user needs --partner ID (`migrantline operators "
                               "partners` lists them); staff have none")
        if partner_id is not None and db.partner(self.store, partner_id) is None:
            raise AccountError(f"no partner organisation {partner_id}")
        self.check_password(password)
        try:
            return db.add_operator(self.store, email, name.strip(), role,
                                   self.hasher.hash(password), self.clock(), partner_id)
        except db.EmailTaken:
            raise AccountError(f"an operator {email} exists already") from None

    def check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")

    def set_password(self, email: str, password: str) -> None:
        """A new password; every browser signed in with the old one is signed out."""
        operator = self.get(email)
        self.check_password(password)
        db.update_operator(self.store, operator["id"],
                           {"password_hash": self.hasher.hash(password)})
        db.end_sessions(self.store, operator["id"])

    def set_active(self, operator_id: int, active: bool) -> None:
        db.update_operator(self.store, operator_id, {"active": int(active)})
        if not active:
            db.end_sessions(self.store, operator_id)

    def get(self, email: str) -> dict[str, Any]:
        operator = db.operator_by_email(self.store, normalise_email(email))
        if operator is None:
            raise AccountError(f"no operator {normalise_email(email)}; "
                               "`migrantline operators list` shows them")
        return operator

    def by_id(self, operator_id: int) -> dict[str, Any] | None:
        return db.operator_by_id(self.store, operator_id)

    def all(self) -> list[dict[str, Any]]:
        return db.operators(self.store)

    # -------------------------------------------------------- signing in

    def email_key(self, email: str) -> str:
        """What is kept of an email typed at sign-in: a keyed hash, never the text.

        Why: people type a password, or a victim's name, into the wrong field; the
        attempts table and the audit log must not keep it. The same text gives the
        same hash (lock-outs count per account; a supervisor sees which known
        account was tried, as ``known_emails`` resolves them), and without the
        secret key a hash cannot be tested against guesses.
        """
        digest = hmac.new(self._email_key, normalise_email(email)[:254].encode(),
                          hashlib.sha256).hexdigest()
        return f"email#{digest[:20]}"

    def known_emails(self) -> dict[str, str]:
        """The hash of each operator's email, to its email (for the audit page)."""
        return {self.email_key(o["email"]): o["email"] for o in self.all()}

    def sign_in(self, email: str, password: str, ip: str) -> SignIn:
        email = normalise_email(email)[:254]
        now = self.clock()
        typed = self.email_key(email)
        by_email, by_ip, _ = db.login_failures(self.store, typed, ip, now - self.lock_seconds)
        if by_email >= self.max_failures or by_ip >= self.ip_max_failures:
            return SignIn("locked")
        operator = db.operator_by_email(self.store, email) if email else None
        if operator is None and not self._dummy:
            self._dummy = self.hasher.hash("not the password of anyone")
        ok = self._verify(operator["password_hash"] if operator else self._dummy, password)
        ok = ok and operator is not None and bool(operator["active"])
        db.record_login(self.store, typed, ip, ok, now)
        if not ok or operator is None:
            if by_email + 1 >= self.max_failures or by_ip + 1 >= self.ip_max_failures:
                return SignIn("locked")
            return SignIn("bad")
        fields: dict[str, Any] = {"last_login_at": now}
        if self.hasher.check_needs_rehash(operator["password_hash"]):
            fields["password_hash"] = self.hasher.hash(password)  # parameters were raised
        db.update_operator(self.store, operator["id"], fields)
        db.purge_login_attempts(self.store, now - KEEP_ATTEMPTS_SECONDS)
        return SignIn("ok", {**operator, **fields})

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
