"""What an engine step's events do, the same on every channel (USSD, SMS, voice).

``apply_events`` turns ``SmsRequested`` into one contact-list SMS to the caller:
built here once, sealed (``privacy.seal_text``), linked to the phone's keyed hash
so erasing the phone erases it, and stored under the idempotency key the
channel gives (its hop, message or call step), so a retried input queues
nothing more. No SMS ever goes to a withheld number; an opted-out phone's is
held back by the outbox. ``RecordingExpected`` notes a spoken answer's
recording for its complaint (fetched in the background, once per key).
``LanguageChosen`` needs nothing here: each channel remembers the caller's
language with its state; ``ActionRequested`` was done by the core already.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from ussd_app import store as db
from ussd_app.conversation.inbound import Caller
from ussd_app.engine.bidi import for_display
from ussd_app.engine.encoding import sms_segments
from ussd_app.engine.events import Event, RecordingExpected, SmsRequested
from ussd_app.engine.model import Tree
from ussd_app.engine.paging import contacts_text
from ussd_app.privacy.protect import Sealer, seal_text

log = logging.getLogger(__name__)

Enqueue = Callable[[db.OutboxItem], object]
# Notes a recording to fetch: (reference, provider, url, seconds, key) -> added.
Expect = Callable[[str, str, str, "int | None", str], object]


def into_store(store: db.Store) -> Enqueue:
    """Enqueue each message at once (the caller is told it is on its way)."""
    return lambda item: db.enqueue(store, item)


def contact_list_body(tree: Tree, list_node: str, lang: str) -> str:
    """The list as the SMS carries it: numbers marked to read left to right in Arabic."""
    node = tree.nodes[list_node]
    return for_display(tree.text(node.title, lang) + "\n" + contacts_text(tree, node, lang),
                       lang)


def sms_item(sealer: Sealer, key: str, caller: Caller, lang: str, body: str,
             kind: str = "message") -> db.OutboxItem:
    """An SMS to the caller as the outbox keeps it: number and body sealed."""
    encoding, segments = sms_segments(body)
    return db.OutboxItem(key, sealer.seal(caller.phone), lang, seal_text(sealer, body),
                         encoding.value, segments, kind, caller.phone_key)


def apply_events(events: Iterable[Event], tree: Tree, caller: Caller, sealer: Sealer,
                 key: str, enqueue: Enqueue,
                 expect: Expect | None = None) -> list[db.OutboxItem]:
    """Apply one input's events; the messages it enqueued (none for a withheld caller)."""
    items: list[db.OutboxItem] = []
    for event in events:
        if isinstance(event, SmsRequested) and event.list_node in tree.nodes \
                and not caller.withheld:
            body = contact_list_body(tree, event.list_node, event.lang)
            item = sms_item(sealer, key, caller, event.lang, body)
            enqueue(item)
            items.append(item)
        elif isinstance(event, RecordingExpected) and expect is not None:
            try:
                expect(event.reference, event.provider, event.url, event.seconds, event.key)
            except Exception:  # the fetch is retried from the stored row; never lost
                log.exception("could not record the voice answer to fetch")
    return items


__all__ = ["Enqueue", "Expect", "apply_events", "contact_list_body", "into_store", "sms_item"]
