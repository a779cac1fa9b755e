"""What an erasure removes of a case's exchanges with partner centres abroad.

Apart from ``centres.py`` because the complaints' erasure runs it (``ERASERS``) and
``centres.py`` imports the complaints' columns: no ring. What a partner centre sent
back (its message) loses its text; a referral not delivered yet is not delivered any
more (its sealed envelope emptied, marked refused "erased"). A referral already
delivered is the partner's record: tell them (the case page shows where it went).
"""

from __future__ import annotations

from ussd_app.store.base import Conn


def erase_for_complaint(conn: Conn, complaint_id: int, at: float) -> None:
    conn.execute("update centre_referrals set remote_message_sealed = null, updated_at = ? "
                 "where complaint_id = ?", [at, complaint_id])
    conn.execute(
        "update centre_outbox set envelope = '', status = 'refused', error = 'erased', "
        "updated_at = ?, lease_until = null where status in ('queued', 'sending') and "
        "kind = 'referral' and referral_uid in (select uid from centre_referrals where "
        "complaint_id = ? and direction = 'out')", [at, complaint_id])
