"""What the service forgets on its own: drafts, old sessions, sent SMS bodies, voice calls.

Run hourly (or every five minutes) by the background jobs ``web`` starts, and by
``migrantline retention purge``; nothing a caller typed lingers past its use.
"""

from __future__ import annotations

import time

from ussd_app.store import Store, purge_sms_conversations
from ussd_app.store.privacy import checkpoint, erase_outbox_bodies, purge_erased_phones

SESSION_KEEP_SECONDS = 24 * 3600


def purge_outbox_bodies(store: Store, keep_days: float) -> int:
    """Erase the text and number of SMS done with for ``keep_days`` (hourly, and by
    ``migrantline retention purge``); then fold the WAL so no old frame keeps them."""
    now = time.time()
    count = erase_outbox_bodies(store, now - keep_days * 86400, now)
    if count:
        checkpoint(store)
    return count


def purge_drafts(store: Store, draft_seconds: float, conversation_seconds: float) -> None:
    now = time.time()
    purge_erased_phones(store, now)
    store.purge_sessions(now - SESSION_KEEP_SECONDS, drafts_older_than=now - draft_seconds)
    purge_sms_conversations(store, now - conversation_seconds, now - draft_seconds)
