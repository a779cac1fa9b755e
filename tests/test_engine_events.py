"""Engine events: "send me this list by SMS" queues one SMS on USSD, SMS and voice alike.

The same keys on every channel: a language, 99 (help now), the hotlines, 1 (SMS),
1 (yes, it is safe). Each queues exactly one sealed contact-list SMS to that
caller in their language; a retried hop, message or webhook queues no second.
"""

from __future__ import annotations

import pytest
from flask import Flask

from ussd_app.channels.ussd.endpoints import UssdLayout
from ussd_app.engine.encoding import Limits
from ussd_app.engine.events import LanguageChosen, SmsRequested
from ussd_app.engine.loader import read_tree
from ussd_app.engine.machine import Context, State, first_state, step_events
from ussd_app.engine.paging import contacts_text
from ussd_app.i18n import Catalogs
from ussd_app.privacy.protect import SEALED, open_text

from .conftest import DEMO_CONTENT, Phone
from .test_sms import Texter
from .voice_phone import Heard, VoiceCaller

TREE = read_tree(DEMO_CONTENT)
LANG_KEYS = {lang.code: str(i + 1) for i, lang in enumerate(TREE.languages)}
HOTLINES = "help_hotlines"
HOTLINES_KEY = str([o.target for o in TREE.nodes[TREE.help].options].index(HOTLINES) + 1)


def keys(lang: str) -> tuple[str, ...]:
    """Language, help now, the hotlines, "1 SMS", "1 yes": 1, 99, 2, 1, 1 in English."""
    return (LANG_KEYS[lang], "99", HOTLINES_KEY, "1", "1")


def expected_body(lang: str) -> str:
    node = TREE.nodes[HOTLINES]
    return TREE.text(node.title, lang) + "\n" + contacts_text(TREE, node, lang)


def contact_lists(app: Flask, number: str) -> list[dict]:
    """The contact-list SMS queued to ``number`` (replies to texts left out), opened."""
    services = app.extensions["migrantline"]
    sealer = services.ussd.sealer
    found = []
    for row in services.store.outbox():
        if row["kind"] == "reply" or sealer.open(row["to_sealed"]) != number:
            continue
        assert row["body"].startswith(SEALED)  # sealed at rest
        found.append({**row, "body": open_text(sealer, row["body"])})
    return found


def assert_one_list(app: Flask, number: str, lang: str) -> None:
    lists = contact_lists(app, number)
    assert len(lists) == 1, lists
    assert lists[0]["body"] == expected_body(lang)
    assert lists[0]["lang"] == lang
    assert lists[0]["phone_key"]  # linked to the phone: erased with it


def press(caller: VoiceCaller, *presses: str) -> Heard:
    """Keys on the voice line, waiting out "one moment" while a prompt is made."""
    heard = caller.last
    for key in presses:
        caller.press(key)
        heard = caller.wait_out()
    assert heard is not None
    return heard


def test_the_demo_keys_are_the_issue_keys() -> None:
    assert keys("en") == ("1", "99", "2", "1", "1")


# ------------------------------------------------------------ the engine, pure

@pytest.fixture(scope="module")
def ctx() -> Context:
    return Context(TREE, UssdLayout(Limits()), Catalogs().gettext)


def walk(ctx: Context, inputs: tuple[str, ...]) -> list[tuple[State, list]]:
    state = first_state(TREE, None)
    steps = []
    for raw in inputs:
        state, events = step_events(ctx, state, raw)
        steps.append((state, events))
    return steps


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_step_events_requests_the_sms_exactly_on_the_confirming_input(ctx: Context,
                                                                      lang: str) -> None:
    steps = walk(ctx, (*keys(lang), "0", "0"))
    events = [e for _, e in steps]
    assert events[0] == [LanguageChosen(lang)]
    assert events[1:4] == [[], [], []]
    assert events[4] == [SmsRequested(HOTLINES, lang)]
    assert events[5:] == [[], []]  # back from the "on its way" screen: nothing more


def test_saying_no_requests_nothing(ctx: Context) -> None:
    steps = walk(ctx, (*keys("en")[:4], "2"))
    assert all(events == [] for _, events in steps[1:])


def test_a_language_is_chosen_only_from_the_language_list(ctx: Context) -> None:
    steps = walk(ctx, ("1", "1", "0", "00", "99"))
    assert [e for _, e in steps] == [[LanguageChosen("en")], [], [], [], []]
    invalid = walk(ctx, ("9",))  # no ninth language
    assert invalid[0][1] == []


def test_events_are_immutable() -> None:
    event = SmsRequested(HOTLINES, "en")
    with pytest.raises(AttributeError):
        event.lang = "fr"  # type: ignore[misc]


# ------------------------------------------------------------ the three channels

@pytest.mark.parametrize("lang", ["en", "ar"])
def test_ussd_queues_one_list_and_a_retried_hop_none(app: Flask, phone: Phone,
                                                     lang: str) -> None:
    phone.dial()
    done = phone.press(*keys(lang))
    assert_one_list(app, phone.number, lang)
    assert phone.hop_text("*".join(phone.inputs)) == done  # the provider retries the hop
    assert_one_list(app, phone.number, lang)
    fresh = app.test_client()  # another worker (no cached replay) gets the retry
    fresh.post("/ussd/africastalking", data={
        "sessionId": phone.session, "serviceCode": "*384*1234#",
        "phoneNumber": phone.number, "networkCode": "99999", "text": "*".join(phone.inputs)})
    assert_one_list(app, phone.number, lang)
    phone.press("0")  # a later hop replays the confirming input: it queues nothing
    assert_one_list(app, phone.number, lang)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_sms_queues_one_list_and_a_retried_message_none(app: Flask, lang: str) -> None:
    texter = Texter(app)
    texter.send("")
    for key in keys(lang)[:-1]:
        texter.send(key)
    texter.send(keys(lang)[-1], message_id="ATXid_confirm")
    assert_one_list(app, texter.number, lang)
    texter.send(keys(lang)[-1], message_id="ATXid_confirm")  # the provider retries it
    assert_one_list(app, texter.number, lang)
    texter.send("0")
    assert_one_list(app, texter.number, lang)


@pytest.mark.parametrize("provider", ["twilio", "africastalking"])
def test_voice_queues_one_list_and_a_retried_webhook_none(app: Flask, provider: str) -> None:
    caller = VoiceCaller(app.test_client(), provider=provider)
    caller.dial()
    confirm = press(caller, *keys("en")[:-1])
    assert confirm.kind == "gather"
    done = press(caller, keys("en")[-1])
    assert any("SMS will arrive" in s for s in done.says), done.says
    assert_one_list(app, caller.number, "en")
    digits = "Digits" if provider == "twilio" else "dtmfDigits"
    caller.post(confirm.action, caller.fields(**{digits: "1"}))  # a retried webhook
    assert caller.wait_out().says == done.says
    assert_one_list(app, caller.number, "en")
    press(caller, "0")
    assert_one_list(app, caller.number, "en")


def test_voice_in_another_language(app: Flask) -> None:
    caller = VoiceCaller(app.test_client())
    caller.dial()
    press(caller, *keys("fr"))
    assert_one_list(app, caller.number, "fr")


def test_no_list_for_a_withheld_caller(app: Flask) -> None:
    phone = Phone(app.test_client(), number="anonymous")
    phone.dial()
    phone.press(*keys("en"))
    caller = VoiceCaller(app.test_client(), number="Restricted")
    caller.dial()
    press(caller, *keys("en"))
    assert app.extensions["migrantline"].store.outbox() == []
