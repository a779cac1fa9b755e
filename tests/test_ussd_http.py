"""The Africa's Talking USSD endpoint, driven as the provider drives it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ussd_app.engine.encoding import Limits, fits
from ussd_app.engine.loader import read_tree

from .conftest import DEMO_CONTENT, Phone, make_app

TREE = read_tree(DEMO_CONTENT)
LIMITS = Limits(160, 70)
LANG_KEYS = {lang.code: str(i + 1) for i, lang in enumerate(TREE.languages)}


def screen(body: str) -> str:
    return body[4:]


def title(node_id: str, lang: str) -> str:
    return TREE.text(TREE.nodes[node_id].title, lang)


def label(node_id: str, lang: str) -> str:
    node = TREE.nodes[node_id]
    return TREE.text(node.label or node.title, lang)


def test_first_contact_lists_languages_in_their_own_scripts(phone: Phone) -> None:
    first = phone.dial()
    assert first.startswith("CON ")
    body = first if "98 " not in first else first + phone.press("98")  # two pages at most
    for lang in TREE.languages:
        assert lang.name in body
    assert "English" in body and "العربية" in body and "नेपाली" in body and "Français" in body


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne", "lo"])
def test_full_session_in_each_language(client: FlaskClient, lang: str) -> None:
    phone = Phone(client)
    phone.dial()
    main = phone.press(LANG_KEYS[lang])
    assert title("main", lang) in main
    assert label("before_you_go", lang) in main
    submenu = phone.press("1")
    assert title("before_you_go", lang) in submenu
    first = phone.press("3")  # the contract article
    assert title("bg_contract", lang) in first
    assert "98" in first
    second = phone.press("98")
    assert second != first and title("bg_contract", lang) not in second
    assert phone.press("0") == first  # back a page
    assert title("before_you_go", lang) in phone.press("0")  # back to the submenu
    assert title("main", lang) in phone.press("00")
    help_screen = phone.press("99")
    assert title("help_now", lang) in help_screen
    for body in (main, submenu, first, second, help_screen):
        assert body.startswith("CON ")
        assert fits(screen(body), LIMITS), (lang, body)


def test_every_article_readable_to_the_end_in_every_language(client: FlaskClient) -> None:
    """Walk each article page by page: each page fits, the last says no more."""
    for lang in TREE.language_codes:
        phone = Phone(client)
        phone.dial()
        phone.press(LANG_KEYS[lang])
        for section_key, section in enumerate(TREE.nodes["main"].options, start=1):
            node = TREE.nodes[section.target]
            if node.type != "menu":
                continue
            for option_key, option in enumerate(node.options, start=1):
                phone.press("00", str(section_key), str(option_key))
                pages = 0
                while True:
                    body = phone.press("98") if pages else phone.hop_text("*".join(phone.inputs))
                    assert fits(screen(body), LIMITS), body
                    pages += 1
                    if "98 " not in body.splitlines()[-1]:
                        break
                    assert pages < 60, f"{option.target} in {lang} never ends"


def test_retried_callback_gets_the_same_answer(phone: Phone) -> None:
    phone.dial()
    phone.press("1", "1")
    first = phone.hop_text("1*1*3")
    assert phone.hop_text("1*1*3") == first
    later = phone.hop_text("1*1*3*98")
    assert phone.hop_text("1*1*3") == first  # a late retry of an earlier hop
    assert phone.hop_text("1*1*3*98") == later


def test_language_is_kept_per_phone_across_sessions_and_restarts(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_RESUME_MINUTES="0")
    phone = Phone(app.test_client())
    phone.dial()
    assert title("main", "ne") in phone.press(LANG_KEYS["ne"])
    assert title("main", "ne") in phone.dial()  # the next call skips the language list
    app.extensions["migrantline"].store.close()
    restarted = make_app(tmp_path, MIGRANTLINE_RESUME_MINUTES="0")
    again = Phone(restarted.test_client(), number=phone.number)
    assert title("main", "ne") in again.dial()
    other = Phone(restarted.test_client())
    assert "English" in other.dial()  # another phone still gets the list


def test_language_can_be_changed_from_the_menu(phone: Phone) -> None:
    phone.dial()
    phone.press(LANG_KEYS["en"])
    language_key = str([o.target for o in TREE.nodes["main"].options].index("language") + 1)
    body = phone.press("98", language_key) if language_key not in phone.press("00") \
        else phone.press(language_key)
    assert "العربية" in body
    assert title("main", "ar") in phone.press(LANG_KEYS["ar"])


def test_redial_within_five_minutes_offers_to_continue(phone: Phone) -> None:
    phone.dial()
    phone.press(LANG_KEYS["fr"], "2")
    article = phone.press("1")
    offer = phone.dial()  # the session dropped; the phone dials again
    assert "Reprendre" in offer and "Recommencer" in offer
    assert phone.press("1") == article
    phone.dial()
    fresh = phone.press("2")
    assert title("main", "fr") in fresh


def test_a_session_is_found_by_another_worker_at_once(tmp_path: Path) -> None:
    """Each hop commits its progress before it is answered: a second worker (another app
    on the same database) offers the dropped session on an immediate redial, with no
    flush. (Before, progress waited in a per-process buffer: the other worker found
    nothing, and a flush held up by another writer hid it from its own worker too.)"""
    first, second = make_app(tmp_path), make_app(tmp_path)
    phone = Phone(first.test_client())
    phone.dial()
    phone.press(LANG_KEYS["fr"], "2")
    article = phone.press("1")
    assert first.extensions["migrantline"].store.session(phone.session) is not None
    other = Phone(second.test_client(), number=phone.number)
    assert "Reprendre" in other.dial()  # the session dropped; the phone dials again
    assert other.press("1") == article


def test_a_session_left_on_the_main_menu_offers_no_resume_on_any_worker(
        tmp_path: Path) -> None:
    """Hops alternate between two workers. Back on the main menu after an article, the
    progress says "nothing to resume"; the hops after it, from one such screen to another,
    write nothing (the stored row already says it): the redial, on either worker, starts
    at the main menu, not at the article."""
    apps = [make_app(tmp_path), make_app(tmp_path)]
    phones = [Phone(app.test_client()) for app in apps]
    phones[1].number = phones[0].number
    keys = [LANG_KEYS["en"], "1", "1", "00", "x", "x"]
    phones[0].dial()
    for n, key in enumerate(keys):
        phone = phones[(n + 1) % 2]
        phone.session, phone.inputs = phones[0].session, list(phones[0].inputs)
        screen_text = phone.press(key)
        phones[0].inputs = phone.inputs
        if n == 2:
            assert "Invalid choice" not in screen_text and title("main", "en") not in screen_text
    assert "Invalid choice" in screen_text and title("main", "en") in screen_text
    for phone in phones:
        assert title("main", "en") in phone.dial()


def test_resume_survives_a_restart(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    phone = Phone(app.test_client())
    phone.dial()
    phone.press(LANG_KEYS["ar"], "1")
    article = phone.press("3")
    app.extensions["migrantline"].store.close()  # flush, as a clean shutdown does
    restarted = make_app(tmp_path)
    again = Phone(restarted.test_client(), number=phone.number)
    assert "أكمل" in again.dial()
    assert again.press("1") == article


def test_no_resume_offer_from_the_main_menu_or_after_the_window(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    phone = Phone(app.test_client())
    phone.dial()
    phone.press(LANG_KEYS["en"])
    assert title("main", "en") in phone.dial()
    late = make_app(tmp_path / "late", MIGRANTLINE_RESUME_MINUTES="0")
    phone = Phone(late.test_client())
    phone.dial()
    phone.press(LANG_KEYS["en"], "1", "1")
    assert title("main", "en") in phone.dial()


@pytest.mark.parametrize("text", ["", "1*", "1**2", "*", "**", "1*1*3*", "abc", "1*x*y",
                                  "1*1*\u200f3", "1*😀", "1*\u0000", "1*" + "9" * 300,
                                  "1*1*3*" + "*".join(["98"] * 190)])
def test_odd_text_gets_a_screen_never_an_error(phone: Phone, text: str) -> None:
    phone.session = "ATUid_odd"
    body = phone.hop_text(text)
    assert body.startswith("CON ")
    assert fits(screen(body), LIMITS)
    assert "Traceback" not in body


def test_invalid_input_shows_the_same_screen_with_a_hint(phone: Phone) -> None:
    phone.dial()
    menu = phone.press(LANG_KEYS["en"], "1")
    again = phone.press("x")
    assert again.startswith("CON Invalid choice")
    assert again.splitlines()[-1] == menu.splitlines()[-1]
    assert phone.press("42").startswith("CON Invalid choice")
    last_page = phone.press("8")
    while "98 " in last_page.splitlines()[-1]:
        last_page = phone.press("98")
    assert "No more pages" in phone.press("98")


def test_long_text_for_an_unknown_session_replays_from_the_start(client: FlaskClient) -> None:
    phone = Phone(client)
    phone.session = "ATUid_never_seen"
    body = phone.hop_text("1*1*3*98")
    assert body.startswith("CON ")
    assert title("bg_contract", "en") not in body  # page 2 of the article
    assert phone.hop_text("1*1*3") .startswith("CON " + title("bg_contract", "en"))


def test_ten_kilobytes_of_text(phone: Phone) -> None:
    phone.session = "ATUid_big"
    body = phone.hop_text("1*" + "x" * 10_000)
    assert body.startswith("CON Invalid choice")


def test_a_text_past_200_inputs_ends_with_a_clean_screen(phone: Phone) -> None:
    phone.session = "ATUid_hops"
    assert phone.hop_text("*".join(["1", "1", "3"] + ["98"] * 197)).startswith("CON ")  # 200
    for text in ["*".join(["1", "1", "3"] + ["98"] * 198),  # 201 inputs
                 "1*" + "*" * 30_000,  # 30,000 empty inputs
                 "1*" + "x" * 40_000]:  # two inputs, but longer than 200 of a handset's
        assert phone.hop_text(text) == "END This session is too long. Please dial again."


def test_the_too_long_screen_is_in_the_callers_language(client: FlaskClient) -> None:
    phone = Phone(client)
    phone.dial()
    phone.press(LANG_KEYS["fr"], "1")
    body = phone.hop_text("*".join(phone.inputs + ["1"] * 300))
    assert body == "END Cette session est trop longue. Veuillez rappeler."
    phone.dial()  # a new session of the same phone: its language is known from the store
    assert phone.hop_text("*" * 500).startswith("END Cette session est trop longue")


def test_a_30000_input_text_costs_less_than_a_normal_replay(client: FlaskClient) -> None:
    """Before the limit, a 30,000-hop text cost as much CPU as 700 callers' hops."""
    def fastest(text: str) -> float:
        times = []
        for i in range(3):
            phone = Phone(client, number="+9779800055555")
            phone.session = f"ATUid_cost_{len(text)}_{i}"  # never seen: a full replay
            started = time.perf_counter()
            phone.hop_text(text)
            times.append(time.perf_counter() - started)
        return min(times)

    normal = fastest("*".join(["1", "1", "3"] + ["98"] * 100))
    hostile = fastest("*".join(["1", "1", "3"] + ["1"] * 30_000))  # 60 kB: under 64 KiB
    assert hostile < normal, (hostile, normal)


def test_invalid_utf8_is_answered(client: FlaskClient) -> None:
    response = client.post(
        "/ussd/africastalking",
        data=b"sessionId=ATUid_utf8&phoneNumber=%2B97798&serviceCode=%2A1%23&text=1%2A%FF%FE",
        content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("CON ")


@pytest.mark.parametrize("data", [
    {}, {"sessionId": "ATUid_x"}, {"phoneNumber": "+97798"}, {"sessionId": "", "phoneNumber": ""},
    {"sessionId": "x" * 500, "phoneNumber": "+97798"},
])
def test_not_a_ussd_callback_gets_400(client: FlaskClient, data: dict[str, str]) -> None:
    response = client.post("/ussd/africastalking", data=data)
    assert response.status_code == 400
    assert "sessionId" in response.get_data(as_text=True)


def test_missing_text_is_the_first_hop(client: FlaskClient) -> None:
    response = client.post("/ussd/africastalking",
                           data={"sessionId": "ATUid_nt", "phoneNumber": "+9779811111111"})
    assert response.status_code == 200
    assert "English" in response.get_data(as_text=True)


def test_other_requests_get_plain_errors(client: FlaskClient) -> None:
    assert client.get("/ussd/africastalking").status_code == 405
    json_body = client.post("/ussd/africastalking", json={"sessionId": "a"})
    assert json_body.status_code == 400
    huge = client.post("/ussd/africastalking", data={"sessionId": "a", "phoneNumber": "1",
                                                     "text": "1" * 100_000})
    assert huge.status_code == 413
    for response in (json_body, huge):
        assert "<html" not in response.get_data(as_text=True).lower()


def test_webhook_token_is_required_when_set(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN="s3cret")
    client = app.test_client()
    denied = client.post("/ussd/africastalking",
                         data={"sessionId": "a", "phoneNumber": "+97798", "text": ""})
    assert denied.status_code == 403
    phone = Phone(client, query="?token=s3cret")
    assert phone.dial().startswith("CON ")


def test_sessions_store_no_phone_numbers(app, phone: Phone) -> None:  # type: ignore[no-untyped-def]
    phone.dial()
    phone.press(LANG_KEYS["en"], "1", "1")
    store = app.extensions["migrantline"].store
    digits = phone.number.lstrip("+")
    db = store.db()
    for table in ("ussd_sessions", "phones"):
        rows = list(db.query(f"select * from {table}"))  # written in their hops
        assert rows
        assert digits not in repr(rows)
    if not store.postgres:  # nor anywhere in the SQLite file
        assert digits not in store.path.read_bytes().decode("latin-1")


def test_hanging_up_on_the_offer_offers_it_again(phone: Phone) -> None:
    phone.dial()
    phone.press(LANG_KEYS["en"], "2")
    article = phone.press("3")
    assert "Continue where you stopped?" in phone.dial()
    assert "Continue where you stopped?" in phone.dial()  # dropped again at the offer
    assert phone.press("1") == article
    phone.dial()
    phone.press("2")  # start again, from the main menu
    assert "Continue" not in phone.dial()


def test_old_sessions_are_purged(app, phone: Phone) -> None:  # type: ignore[no-untyped-def]
    import time

    phone.dial()
    phone.press(LANG_KEYS["en"], "1")
    store = app.extensions["migrantline"].store
    assert store.purge_sessions(time.time() - 60) == 0  # recent: kept
    assert store.session(phone.session) is not None
    assert store.purge_sessions(time.time() + 1) == 1
    assert store.session(phone.session) is None


def test_a_session_started_long_ago_and_active_now_is_kept(app) -> None:  # type: ignore[no-untyped-def]
    """The purge finds rows by their start (indexed) and keeps any updated since."""
    import time

    services = app.extensions["migrantline"]
    now = time.time()
    assert services.ussd.answer("ATUid_long", "+9779800000777", "", now=now - 7200)
    assert services.ussd.answer("ATUid_long", "+9779800000777", "1", now=now - 7100)
    assert services.ussd.answer("ATUid_long", "+9779800000777", "1*1", now=now)  # in its hop
    row = services.store.session("ATUid_long")
    assert row.started_at == now - 7200 and row.updated_at == now
    assert services.store.purge_sessions(now - 3600, drafts_older_than=now - 3600) == 0
    assert services.store.session("ATUid_long") is not None
    assert services.store.purge_sessions(now + 1) == 1
