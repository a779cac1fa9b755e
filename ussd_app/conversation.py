"""What an engine step's events do, the same on every channel (USSD, SMS, voice).

``apply_events`` turns ``SmsRequested`` into one contact-list SMS to the caller:
built here once, sealed (``privacy.seal_text``), linked to the phone's keyed hash
so erasing the phone erases it, and stored under the idempotency key the
channel gives (its hop, message or call step), so a retried input queues
nothing more. No SMS ever goes to a withheld number; an opted-out phone's is
held back by the outbox. ``LanguageChosen`` needs nothing here: each channel
remembers the caller's language with its state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ussd_app import store as db
from ussd_app.engine.encoding import sms_segments
from ussd_app.engine.events import Event, SmsRequested
from ussd_app.engine.model import Tree
from ussd_app.engine.paging import contacts_text
from ussd_app.privacy.protect import Sealer, is_withheld, seal_text

Enqueue = Callable[[db.OutboxItem], object]


def into_store(store: db.Store) -> Enqueue:
    """Enqueue each message at once (the caller is told it is on its way)."""
    return lambda item: db.enqueue(store, item)


def contact_list_body(tree: Tree, list_node: str, lang: str) -> str:
    node = tree.nodes[list_node]
    return tree.text(node.title, lang) + "\n" + contacts_text(tree, node, lang)


def apply_events(events: Iterable[Event], tree: Tree, phone: str, phone_key: str,
                 sealer: Sealer, key: str, enqueue: Enqueue) -> list[db.OutboxItem]:
    """Apply one input's events; the messages it enqueued (none for a withheld caller)."""
    items: list[db.OutboxItem] = []
    if is_withheld(phone):
        return items
    for event in events:
        if isinstance(event, SmsRequested) and event.list_node in tree.nodes:
            lang = event.lang
            body = contact_list_body(tree, event.list_node, lang)
            encoding, segments = sms_segments(body)
            item = db.OutboxItem(key, sealer.seal(phone), lang, seal_text(sealer, body),
                                 encoding.value, segments, "message", phone_key)
            enqueue(item)
            items.append(item)
    return items


__all__ = ["Enqueue", "apply_events", "contact_list_body", "into_store"]
