"""The SMS channel's own tables: conversations, inbound messages claimed once, opt-outs.

Conversations hold the engine State per phone key (as JSON, sealed once it
holds answers); an inbound message's id is claimed once so a provider's retry
changes nothing; a STOP is kept per phone key (see ``sms_flows/service.py``).
The USSD hot path shares this database: every function here is one short
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ussd_app.store.base import Db, Handle, rowcount, write_transaction
from ussd_app.store.case_messages import insert_message
from ussd_app.store.outbox import OutboxItem, insert_outbox


def m_sms_001(db: Db) -> None:
    db.table("sms_conversations").create({"phone_key": str, "version": str, "state": str,
                                          "updated_at": float}, pk="phone_key")
    db.table("sms_inbound").create({"provider": str, "message_id": str, "phone_key": str,
                                    "digest": str, "received_at": float},
                                   pk=("provider", "message_id"))
    db.table("sms_inbound").create_index(["phone_key", "received_at"])
    db.table("sms_optouts").create({"phone_key": str, "stopped_at": float}, pk="phone_key")
    db.table("outbox").add_column("kind", str)  # "reply": answers a message, sent despite STOP
    db.table("outbox").create_index(["provider_id"])


@dataclass(frozen=True)
class Conversation:
    version: str
    state: str  # engine State as JSON
    updated_at: float


def inbound_seen(store: Handle, provider: str, message_id: str) -> bool:
    return store.db().execute("select 1 from sms_inbound where provider = ? and message_id = ?",
                              [provider, message_id]).fetchone() is not None


def recent_inbound(store: Handle, phone_key: str, since: float) -> list[tuple[str, float]]:
    """(digest, time) of the phone's messages received after ``since``, newest first."""
    return [(row[0], row[1]) for row in store.db().execute(
        "select digest, received_at from sms_inbound where phone_key = ? and received_at >= ? "
        "order by received_at desc limit 200", [phone_key, since])]


def purge_sms_conversations(store: Handle, older_than: float,
                            drafts_older_than: float) -> int:
    """Forget conversations past their time; those holding a draft (sealed) sooner."""
    return rowcount(store.db().execute(
        "delete from sms_conversations where updated_at < ? or "
        "(updated_at < ? and state like 'sealed:%')", [older_than, drafts_older_than]))


def sms_conversation(store: Handle, phone_key: str) -> Conversation | None:
    row = store.db().execute("select version, state, updated_at from sms_conversations "
                             "where phone_key = ?", [phone_key]).fetchone()
    return Conversation(*row) if row else None


def is_opted_out(store: Handle, phone_key: str) -> bool:
    return store.db().execute("select 1 from sms_optouts where phone_key = ?",
                              [phone_key]).fetchone() is not None


def record_inbound(store: Handle, provider: str, message_id: str, phone_key: str, digest: str,
                   now: float, conversation: Conversation | None = None,
                   opt_out: bool | None = None,
                   replies: Sequence[OutboxItem] = (),
                   attach: Mapping[str, Any] | None = None) -> bool:
    """Claim an inbound message and commit all its effects at once; False if already seen.

    The claim and the effects (conversation, opt-out, replies, the message
    attached to its case: ``case_messages``) share one
    transaction: two deliveries of the same message cannot both reply, and a
    crash before the commit leaves the message unclaimed for the provider's retry.
    """
    conn = store.db().conn
    with write_transaction(conn):
        cursor = conn.execute(
            "insert into sms_inbound (provider, message_id, phone_key, digest, received_at) "
            "values (?, ?, ?, ?, ?) on conflict do nothing",
            [provider, message_id, phone_key, digest, now])
        if not cursor.rowcount:
            return False  # claimed already: nothing was written
        if conversation is not None:
            conn.execute("insert into sms_conversations (phone_key, version, state, updated_at) "
                         "values (?, ?, ?, ?) on conflict(phone_key) do update set "
                         "version = excluded.version, state = excluded.state, "
                         "updated_at = excluded.updated_at",
                         [phone_key, conversation.version, conversation.state,
                          conversation.updated_at])
        if opt_out is True:
            conn.execute("insert into sms_optouts (phone_key, stopped_at) values (?, ?) "
                         "on conflict do nothing", [phone_key, now])
        elif opt_out is False:
            conn.execute("delete from sms_optouts where phone_key = ?", [phone_key])
        if attach is not None and not insert_message(conn, attach):
            replies = ()  # the case was erased a moment ago: nothing kept, nothing said
        for item in replies:
            insert_outbox(conn, item, now)
    return True
