"""What an engine step's events do, the same on every channel (USSD, SMS, voice).

``apply_events`` turns ``SmsRequested`` into one contact-list SMS to the caller (or an
article's full text, in as many messages as the SMS channel would send it):
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
from ussd_app.engine.model import ARTICLE, Tree
from ussd_app.engine.paging import contacts_text
from ussd_app.privacy.protect import Sealer, seal_text

log = logging.getLogger(__name__)

Enqueue = Callable[[db.OutboxItem], object]
ARTICLE_SEGMENTS = 6  # SMS parts per message of an article (MIGRANTLINE_SMS_ARTICLE_MAX_SEGMENTS)
# Notes a recording to fetch: (reference, provider, url, seconds, key) -> added.
Expect = Callable[[str, str, str, "int | None", str], object]


def into_store(store: db.Store) -> Enqueue:
    """Enqueue each message at once (the caller is told it is on its way)."""
    return lambda item: db.enqueue(store, item)


def article_bodies(tree: Tree, node_id: str, lang: str, max_segments: int) -> list[str]:
    """An article's full text (title, then body) as SMS messages of at most
    ``max_segments`` parts each, as the SMS channel sends an article: cut between
    paragraphs, else between words, and numbered (1/2) when there are more than one."""
    node = tree.nodes[node_id]
    words = [tree.text(node.title, lang), *tree.text(node.body, lang).split("\n")]
    room = max_segments - 1 if max_segments > 1 else 1  # the (1/2) mark's room
    bodies: list[str] = []
    current = ""
    for paragraph in (p for p in words if p):
        joined = f"{current}\n{paragraph}" if current else paragraph
        if sms_segments(joined)[1] <= room:
            current = joined
            continue
        if current:
            bodies.append(current)
        current = ""
        for word in paragraph.split(" "):
            joined = f"{current} {word}" if current else word
            if current and sms_segments(joined)[1] > room:
                bodies.append(current)
                joined = word
            current = joined
    if current:
        bodies.append(current)
    if len(bodies) > 1:
        bodies = [f"{body}\n({i}/{len(bodies)})" for i, body in enumerate(bodies, 1)]
    return [for_display(body, lang) for body in bodies]


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
                 expect: Expect | None = None,
                 article_segments: int = ARTICLE_SEGMENTS) -> list[db.OutboxItem]:
    """Apply one input's events; the messages it enqueued (none for a withheld caller).

    An article asked for by SMS may take several messages: the first is keyed ``key``,
    the next ``key:2`` and on, so a retried input queues none of them again."""
    items: list[db.OutboxItem] = []
    for event in events:
        if isinstance(event, SmsRequested) and event.list_node in tree.nodes \
                and not caller.withheld:
            if tree.nodes[event.list_node].type == ARTICLE:
                bodies = article_bodies(tree, event.list_node, event.lang, article_segments)
            else:
                bodies = [contact_list_body(tree, event.list_node, event.lang)]
            for i, body in enumerate(bodies):
                item = sms_item(sealer, key if not i else f"{key}:{i + 1}", caller,
                                event.lang, body)
                enqueue(item)
                items.append(item)
        elif isinstance(event, RecordingExpected) and expect is not None:
            try:
                expect(event.reference, event.provider, event.url, event.seconds, event.key)
            except Exception:  # the fetch is retried from the stored row; never lost
                log.exception("could not record the voice answer to fetch")
    return items


__all__ = ["ARTICLE_SEGMENTS", "Enqueue", "Expect", "apply_events", "article_bodies",
           "contact_list_body", "into_store", "sms_item"]
