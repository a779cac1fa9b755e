"""Referring a case to a centre in another country, and hearing back from it.

One object per process (``Services.centres``). What it does, side by side:

* ``card`` / ``import_card`` / ``revoke``: the partner directory. This centre's
  keys are made the first time they are needed and kept sealed at rest in the
  database (``centre_identity``), one pair per deployment, whatever node asks.
* ``refer``: only a case whose migrant said yes to "may we share your case with a
  centre in another country?" (``share_consent``); the fields the operator chose
  (``DEFAULT_SHARED`` when none) go, sealed to the partner and signed by us, into
  the durable ``centre_outbox`` with the referral row and the case's history event.
* ``send_update``: on a case referred *to* us, a status change, an outcome or a
  short message goes back the same way.
* ``receive``: ``POST /partners/inbox``. The sender must be a known, unrevoked
  centre; the signature must verify; the box must be sealed to us; a message id
  seen before is answered 200 "idempotent" and stores nothing. Every refusal is
  a 4xx with its reason and an audit row. An update is shown on the origin case,
  and the migrant is told by SMS in their language where contact is safe, held
  to their safe window (the origin holds the phone relationship; the destination
  never texts the migrant).
* ``deliver``: the background job (once per cluster) POSTs due envelopes. A 2xx
  is delivered; a 4xx is ``refused`` (kept, shown, retried by an admin); anything
  else (a 5xx, a timeout, a refused connection) waits ``backoff * 2**(n-1)`` seconds,
  at most ``max_backoff``, and is never given up: an office offline for days gets
  everything when its link returns, each message once (the receiver's inbox).

Clocks may disagree: a message's ``at`` is kept as the sender's time and nothing
is refused for it; replays are caught by id, not by age.
"""

from __future__ import annotations

from ussd_app.centres.base import (  # noqa: F401 - the names callers use, from here
    DEFAULT_SHARED,
    SHAREABLE,
    Answer,
    ReferralRefused,
)
from ussd_app.centres.receiving import Receiving
from ussd_app.centres.sending import Sending


class Centres(Sending, Receiving):
    """Partner centres: one object per process (``Services.centres``)."""


__all__ = ["DEFAULT_SHARED", "SHAREABLE", "Answer", "Centres", "ReferralRefused"]
