"""Engine events: "send me this list by SMS" queues one SMS on USSD, SMS and voice alike.

The same keys on every channel: a language, 99 (help now), the hotlines, 1 (SMS),
1 (yes, it is safe). Each queues exactly one sealed contact-list SMS to that
caller in their language; a retried hop, message or webhook queues no second.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from flask import Flask

from ussd_app.channels.ussd.layout import UssdLayout
from ussd_app.conversation import (
    NEW,
    Caller,
    Conversation,
    Inbound,
    dump_state,
    identify,
    load_state,
    recordings_expected,
    with_spoken,
)
from ussd_app.engine import messages as m
from ussd_app.engine.answers import ActionResult, Query
from ussd_app.engine.bidi import for_display
from ussd_app.engine.encoding import Limits
from ussd_app.engine.events import (
    ActionRequested,
    LanguageChosen,
    RecordingExpected,
    SmsRequested,
)
from ussd_app.engine.loader import read_tree
from ussd_app.engine.machine import Context, State, first_state, step_events
from ussd_app.engine.paging import contacts_text
from ussd_app.i18n import Catalogs
from ussd_app.privacy.protect import SEALED, PhoneHasher, Sealer, open_text

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
    node = TREE.nodes[HOTLINES]  # as sent: numbers marked to read left to right in Arabic
    return for_display(TREE.text(node.title, lang) + "\n" + contacts_text(TREE, node, lang),
                       lang)


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
    beyond = str(len(ctx.tree.languages) + 1)  # one past the last language
    invalid = walk(ctx, (beyond,))
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
    again = caller.wait_out()  # the same screen; a piece said before may be played now,
    # its audio rendered meanwhile (on demand, as the caller waited)
    assert len(again.says) + len(again.plays) == len(done.says) + len(done.plays), again.xml
    assert [s for s in done.says if s in again.says] == again.says
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


# ------------------------------------------------------------ actions: asked, run by the core

ANSWERS = (("consent", "yes"), ("category", "unpaid_wages"), ("description", "unpaid"))


def at_confirm(seq: int = 7) -> State:
    return State(lang="en", node="report_confirm", answers=ANSWERS, seq=seq)


def test_the_engine_asks_for_the_complaint_and_files_nothing(ctx: Context) -> None:
    """Pure: without the outcome the engine stops on "not now" and asks for the action."""
    session_ctx = replace(ctx, session="ussd:S1")
    after, events = step_events(session_ctx, at_confirm(), "1")
    assert events == [ActionRequested("ussd:S1:8", "file_complaint", "en", ANSWERS,
                                      "report_confirm")]
    assert after.node == "report_confirm" and after.hint == m.NOT_NOW
    given = replace(session_ctx, outcomes={"ussd:S1:8": ActionResult(
        answers={"reference": "1234 5678"})})
    done, events = step_events(given, at_confirm(), "1")
    assert events == [] and done.node == "report_done"
    assert done.answer_map["reference"] == "1234 5678"


class Filer:
    """A complaints feature that counts what it is asked to do."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, q: Query) -> ActionResult:
        self.keys.append(q.key)
        assert q.caller == CALLER and q.answers == dict(ANSWERS)
        return ActionResult(answers={"reference": "1234 5678"})


CALLER = Caller("voice", "+9779800000001", "k1")


def test_the_core_runs_the_action_once_and_the_screen_shows_its_outcome(ctx: Context) -> None:
    filer = Filer()
    core = Conversation(ctx.t, actions={"file_complaint": filer})
    voice_ctx = core.context(TREE, ctx.layout, "twilio:CA1")
    after, events = core.step(voice_ctx, at_confirm(), "1", CALLER)
    assert after.node == "report_done" and after.answer_map["reference"] == "1234 5678"
    assert events == [ActionRequested("twilio:CA1:8", "file_complaint", "en", ANSWERS,
                                      "report_confirm")]
    again = core.replay(voice_ctx, at_confirm(), ["1"], CALLER)  # a replayed input: same key
    assert again == after and filer.keys == ["twilio:CA1:8", "twilio:CA1:8"]


def test_an_action_nobody_provides_is_not_now(ctx: Context) -> None:
    core = Conversation(ctx.t)
    after, _ = core.step(core.context(TREE, ctx.layout, "s"), at_confirm(), "1", CALLER)
    assert after.node == "report_confirm" and after.hint == m.NOT_NOW


def test_spoken_answers_of_a_filed_complaint_are_expected_recordings() -> None:
    state = with_spoken(at_confirm(), "description", "https://rec/1 a", 42)
    assert recordings_expected(state, "twilio", "twilio:CA1") == []  # no reference yet
    filed = replace(state, answers=(*state.answers, ("reference", "1234 5678")))
    assert recordings_expected(filed, "twilio", "twilio:CA1") == [RecordingExpected(
        "12345678", "twilio", "https://rec/1 a", 42, "twilio:CA1:description")]


def test_a_hang_up_after_speaking_files_through_the_core(ctx: Context) -> None:
    asked: list[Query] = []

    def dropped(q: Query) -> ActionResult:
        asked.append(q)
        return ActionResult(answers={"reference": "87654321"})

    core = Conversation(ctx.t, actions={"file_dropped": dropped})
    call = core.context(TREE, ctx.layout, "twilio:CA2")
    assert core.hung_up(call, at_confirm(), CALLER) == at_confirm()  # nothing spoken
    spoken = with_spoken(at_confirm(), "description", "https://rec/2", None)
    kept = core.hung_up(call, spoken, CALLER)
    assert [q.key for q in asked] == ["twilio:CA2:dropped"]
    assert recordings_expected(kept, "twilio", "twilio:CA2") == [RecordingExpected(
        "87654321", "twilio", "https://rec/2", None, "twilio:CA2:description")]


def test_the_state_codec_seals_answers_and_reads_a_bad_row_as_none() -> None:
    sealer = Sealer(b"k" * 32)
    plain, sealed = State(lang="en", node="main"), at_confirm()
    assert load_state(sealer, dump_state(sealer, plain)) == plain
    stored = dump_state(sealer, sealed)
    assert stored.startswith(SEALED) and load_state(sealer, stored) == sealed
    assert load_state(Sealer(b"o" * 32), stored) is None  # the key changed: start again
    assert load_state(sealer, "") is None and load_state(sealer, "{}") is None


def test_one_inbound_shape_keys_each_channel_as_before() -> None:
    hasher = PhoneHasher(b"k" * 32)
    voice = Inbound("voice", "twilio", "CA1", "anonymous")
    assert voice.session == "twilio:CA1"
    assert identify(hasher, voice).phone_key == hasher.session_key("voice", "twilio:CA1")
    sms = Inbound("sms", "kannel", "m1", "Restricted", "help")
    assert identify(hasher, sms).phone_key == hasher.session_key("sms:kannel", "m1")
    ussd = Inbound("ussd", "africastalking", "ATU1", "+9779800000001", "", NEW)
    assert identify(hasher, ussd) == Caller("ussd", ussd.phone, hasher.key(ussd.phone))
