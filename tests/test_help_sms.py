"""Help now: contact lists on the phone, and "send me this by SMS" into the outbox."""

from __future__ import annotations

import pytest
from flask import Flask

from ussd_app.engine.bidi import for_display
from ussd_app.engine.encoding import Limits, fits, sms_segments
from ussd_app.engine.loader import read_tree
from ussd_app.engine.paging import contacts_text
from ussd_app.privacy.protect import SEALED, open_text

from . import stored
from .conftest import DEMO_CONTENT, Phone

TREE = read_tree(DEMO_CONTENT)
LANG_KEYS = {lang.code: str(i + 1) for i, lang in enumerate(TREE.languages)}
HOTLINES_KEY = str([o.target for o in TREE.nodes[TREE.help].options].index("help_hotlines") + 1)


def open_hotlines(phone: Phone, lang: str) -> str:
    phone.dial()
    phone.press(LANG_KEYS[lang], "99")
    return phone.press(HOTLINES_KEY)


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne", "lo"])
def test_send_the_hotlines_by_sms(app: Flask, phone: Phone, lang: str) -> None:
    hotlines = open_hotlines(phone, lang)
    assert TREE.text(TREE.nodes["help_hotlines"].title, lang) in hotlines
    assert hotlines.splitlines()[-2].startswith("1 ")  # the SMS key: a line of its own
    confirm = phone.press("1")
    assert fits(confirm[4:], Limits(160, 70))
    done = phone.press("1")
    assert done.startswith("CON ")
    retried = phone.hop_text("*".join(phone.inputs))  # the provider retries the same hop
    assert retried == done

    store = app.extensions["migrantline"].store
    queued = store.outbox("queued")
    assert len(queued) == 1
    message = queued[0]
    sealer = app.extensions["migrantline"].ussd.sealer
    assert message["body"].startswith(SEALED)  # sealed at rest, opened to be sent
    message = {**message, "body": open_text(sealer, message["body"])}
    node = TREE.nodes["help_hotlines"]
    # Arabic numbers are marked to read left to right (engine.bidi), the rest as written.
    expected = for_display(TREE.text(node.title, lang) + "\n" + contacts_text(TREE, node, lang),
                           lang)
    assert message["body"] == expected
    assert node.entries[0].phone in message["body"].replace("\u200e", "").replace("\u200f", "")
    encoding, segments = sms_segments(expected)
    assert (message["encoding"], message["segments"]) == (encoding.value, segments)
    assert message["lang"] == lang
    assert sealer.open(message["to_sealed"]) == phone.number
    raw = stored.at_rest(store.path.parent, store.db().conn)
    assert phone.number.lstrip("+") not in raw.decode("latin-1")

    assert phone.press("0") == hotlines  # back to the list it came from


def test_saying_no_sends_nothing(app: Flask, phone: Phone) -> None:
    hotlines = open_hotlines(phone, "en")
    assert "Only if that is safe" in phone.press("1")
    assert phone.press("2") == hotlines
    assert app.extensions["migrantline"].store.outbox() == []


def test_two_requests_in_one_call_are_two_messages(app: Flask, phone: Phone) -> None:
    open_hotlines(phone, "en")
    phone.press("1", "1", "0", "1", "1")
    assert len(app.extensions["migrantline"].store.outbox()) == 2


def test_every_contact_list_page_fits_and_offers_sms(phone: Phone) -> None:
    for lang in TREE.language_codes:
        body = open_hotlines(phone, lang)
        pages = 1
        while "98" in body.splitlines()[-1]:
            assert fits(body[4:], Limits(160, 70))
            assert body.splitlines()[-2].startswith("1 ")  # "1 SMS", a line of its own
            body = phone.press("98")
            pages += 1
        assert pages < 40


def test_the_requested_list_is_delivered_by_the_outbox_worker(app: Flask, phone: Phone) -> None:
    """USSD asks, the outbox worker sends it through the provider, in the caller's language."""
    from bench.standin import StandIn
    from sms_flows.outbox import OutboxWorker
    from ussd_app.providers.kannel import KannelSms

    open_hotlines(phone, "ne")
    phone.press("1", "1")
    standin = StandIn()
    try:
        services = app.extensions["migrantline"]
        worker = OutboxWorker(services.store, KannelSms(
            standin.url + "/cgi-bin/sendsms", "ml", "pw", "5555"), services.ussd.sealer,
            services.ussd.hasher)
        assert worker.drain() == {"sent": 1}
        [sent] = standin.received
        assert sent["to"] == phone.number
        assert TREE.text(TREE.nodes["help_hotlines"].title, "ne") in sent["text"]
        assert services.store.outbox("sent")
    finally:
        standin.close()
