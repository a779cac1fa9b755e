"""What came of a closed case: one of five outcomes, an amount recovered for one of them.

Only a closed case has an outcome. Compensation recovered needs an amount (a
non-negative decimal up to ``MAX_AMOUNT``, with no more decimals than its
currency has) and an ISO 4217 currency that Babel knows; the other outcomes
take neither. The outcome is kept in plain columns (supervisors count it) and
written in the case's history in the same transaction; recording it again
replaces it, and the history keeps both.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision, list_currencies

from ussd_app.complaints.base import ComplaintsBase
from ussd_app.complaints.model import NotFound
from ussd_app.errors import InvalidInput
from ussd_app.store import complaints as db

OUTCOMES = ("resolved", "referred", "compensation", "no_contact", "withdrawn")
COMPENSATION = "compensation"
MAX_AMOUNT = Decimal("100000000")  # a hundred million: more is a typing mistake
CURRENCIES = frozenset(list_currencies())


class BadOutcome(InvalidInput):
    """An outcome that cannot be recorded; ``reason`` says why (a code the page words)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    outcome: str
    amount: str | None = None  # exact decimal text, e.g. "1500.50"
    currency: str | None = None

    @property
    def detail(self) -> str:
        return f"{self.amount} {self.currency}" if self.amount is not None else ""


def parse_outcome(outcome: str, amount: str = "", currency: str = "") -> Outcome:
    """The outcome as typed on the form, checked; ``BadOutcome`` names what is wrong."""
    if outcome not in OUTCOMES:
        raise BadOutcome("outcome")
    if outcome != COMPENSATION:
        return Outcome(outcome)
    code = currency.strip().upper()
    if code not in CURRENCIES:
        raise BadOutcome("currency")
    typed = amount.strip().replace(" ", "").replace(",", "")
    if not typed or len(typed) > 20:
        raise BadOutcome("amount")
    try:
        value = Decimal(typed)
    except InvalidOperation:
        raise BadOutcome("amount") from None
    if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
        raise BadOutcome("amount")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > get_currency_precision(code):
        raise BadOutcome("amount")
    places = Decimal(1).scaleb(-get_currency_precision(code))
    return Outcome(outcome, str(value.quantize(places)), code)


class Outcomes(ComplaintsBase):
    def record_outcome(self, complaint_id: int, outcome: Outcome, operator_id: int | None,
                       actor: str) -> dict[str, object]:
        """Set a closed case's outcome with its history event; ``BadOutcome("open")`` on a
        case that is not closed."""
        row = db.by_id(self.store, complaint_id)
        if row is None:
            raise NotFound(complaint_id)
        if row["status"] != "closed":
            raise BadOutcome("open")
        now = self.clock()
        stored = db.update(
            self.store, complaint_id,
            {"outcome": outcome.outcome, "outcome_amount": outcome.amount,
             "outcome_currency": outcome.currency, "outcome_at": now, "updated_at": now,
             "last_action_at": now},
            {"at": now, "actor": actor, "operator_id": operator_id, "kind": "outcome",
             "status": outcome.outcome, "detail_sealed": self._seal(outcome.detail)})
        assert stored is not None
        return stored
