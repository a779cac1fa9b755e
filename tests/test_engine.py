"""The state machine, driven over a small content tree written for the test."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ussd_app.channels.ussd.layout import UssdLayout
from ussd_app.engine import messages as m
from ussd_app.engine.encoding import Limits
from ussd_app.engine.loader import read_tree
from ussd_app.engine.machine import (
    LANGUAGE_NODE,
    RESUME_NODE,
    Context,
    State,
    first_state,
    is_resumable,
    replay,
    resume_offer,
    step,
    view,
)
from ussd_app.engine.model import Tree
from ussd_app.i18n import Catalogs

LONG_WORDS = [f"word{i:03d}" for i in range(80)]
BIG_OPTIONS = 14

FILES = {
    "site.yaml": """\
languages:
  - {code: en, name: English}
  - {code: fr, name: Français}
default_language: en
main: main
help: help
""",
    "nodes/language.yaml": "id: language\ntype: language\ntitle: {en: Language, fr: Langue}\n",
    "nodes/main.yaml": """\
id: main
type: menu
title: {en: Main, fr: Principal}
options: [info, long, ask_name, big, lookup, language]
""",
    "nodes/info.yaml": "id: info\ntype: article\ntitle: {en: Info, fr: Infos}\n"
                        "body: {en: Short text., fr: Texte court.}\n",
    "nodes/long.yaml": "id: long\ntype: article\ntitle: {en: Long, fr: Long}\n"
                        f"body: {{en: {' '.join(LONG_WORDS)}, fr: {' '.join(LONG_WORDS)}}}\n",
    "nodes/help.yaml": "id: help\ntype: article\ntitle: {en: Help now, fr: Aide}\n"
                        "body: {en: Call 123., fr: Appelez le 123.}\n",
    "nodes/ask_name.yaml": "id: ask_name\ntype: ask\ntitle: {en: Name, fr: Nom}\n"
                            "prompt: {en: Your name?, fr: Votre nom ?}\nnext: ask_city\n",
    "nodes/ask_city.yaml": "id: ask_city\ntype: ask\ntitle: {en: City, fr: Ville}\n"
                            "prompt: {en: Your city?, fr: Votre ville ?}\nservice: agencies\n",
    "nodes/lookup.yaml": "id: lookup\ntype: ask\ntitle: {en: Lookup, fr: Recherche}\nprompt: "
                          "{en: Agency name?, fr: Nom de l'agence ?}\nservice: not_registered\n",
    "nodes/big.yaml": "id: big\ntype: menu\ntitle: {en: Big, fr: Grand}\noptions:\n" + "".join(
        f"  - target: info\n    label: {{en: Option {i} with a rather long label,"
        f" fr: Choix {i} avec un long libellé}}\n" for i in range(1, BIG_OPTIONS + 1)),
}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def agencies(answer: str, lang: str) -> str:
    return f"Licensed agencies in {answer} ({lang}): none found."


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return read_tree(write_tree(tmp_path_factory.mktemp("tree"), FILES))


@pytest.fixture(scope="module")
def catalogs() -> Catalogs:
    return Catalogs()


@pytest.fixture
def ctx(tree: Tree, catalogs: Catalogs) -> Context:
    return Context(tree, UssdLayout(Limits()), catalogs.gettext, {"agencies": agencies})


def shown(ctx: Context, state: State) -> str:
    return ctx.layout.render(view(ctx, state), ctx.t)


def go(ctx: Context, state: State, *keys: str) -> State:
    return replay(ctx, state, keys)


EN_MAIN = "Main\n1. Info\n2. Long\n3. Name\n4. Big\n5. Lookup\n6. Language"


def test_first_state_with_and_without_known_language(tree: Tree) -> None:
    assert first_state(tree, "fr") == State(lang="fr", node="main")
    assert first_state(tree, "de") == State(lang=None, node=LANGUAGE_NODE)
    assert first_state(tree, None) == State(lang=None, node=LANGUAGE_NODE)


def test_language_picker_on_first_contact(ctx: Context) -> None:
    start = first_state(ctx.tree, None)
    assert shown(ctx, start) == "1. English\n2. Français"
    french = step(ctx, start, "2")
    assert french == State(lang="fr", node="main")
    assert shown(ctx, french).startswith("Principal\n1. Infos\n")
    assert step(ctx, start, "1").lang == "en"
    wrong = step(ctx, start, "3")
    assert shown(ctx, wrong) == "Invalid choice\n1. English\n2. Français"
    assert shown(ctx, step(ctx, start, "00")) == "Pick a language\n1. English\n2. Français"


def test_language_picker_from_the_menu(ctx: Context) -> None:
    state = go(ctx, State("en", "main"), "6")
    assert shown(ctx, state) == "Language\n1. English\n2. Français\n0 Back"
    assert go(ctx, state, "2") == State(lang="fr", node="main")
    assert go(ctx, state, "0") == State(lang="en", node="main")


def test_menu_option_opens_its_node(ctx: Context) -> None:
    main = State("en", "main")
    assert shown(ctx, main) == EN_MAIN
    info = step(ctx, main, "1")
    assert shown(ctx, info) == "Info\nShort text.\n0 Back 00 Menu"
    assert shown(ctx, step(ctx, State("fr", "main"), "1")) == \
        "Infos\nTexte court.\n0 Retour 00 Menu"


def test_more_pages_then_no_more_hint(ctx: Context) -> None:
    state = go(ctx, State("en", "main"), "2")
    seen = [view(ctx, state).body]
    assert shown(ctx, state).endswith("98 More 0 Back")
    while view(ctx, state).page + 1 < view(ctx, state).pages:
        state = step(ctx, state, "98")
        seen.append(view(ctx, state).body)
    assert " ".join(seen).split() == LONG_WORDS
    last = shown(ctx, state)
    assert last.endswith("0 Back 00 Menu")
    again = step(ctx, state, "98")
    assert again.page == state.page
    assert shown(ctx, again) == "No more pages\n" + last


def test_back_goes_to_previous_page_then_previous_node(ctx: Context) -> None:
    start = go(ctx, State("en", "main"), "2")
    page2 = go(ctx, start, "98", "98")
    assert page2.page == 2
    assert go(ctx, page2, "0").page == 1
    assert go(ctx, page2, "0", "0") == start
    assert shown(ctx, go(ctx, page2, "0", "0", "0")) == EN_MAIN


def test_back_restores_the_menu_page_the_caller_came_from(ctx: Context) -> None:
    big = go(ctx, State("en", "main"), "4")
    assert shown(ctx, big).endswith("98 More 0 Back")
    second = step(ctx, big, "98")
    first_on_second = view(ctx, second).options[0][0]
    assert int(first_on_second) > 1
    article = step(ctx, second, first_on_second)
    assert article.node == "info"
    assert step(ctx, article, "0") == second
    options, state = list(view(ctx, big).options), big
    while view(ctx, state).page + 1 < view(ctx, state).pages:
        state = step(ctx, state, "98")
        options += view(ctx, state).options
    assert options == [(str(i), f"Option {i} with a rather long label")
                       for i in range(1, BIG_OPTIONS + 1)]
    assert step(ctx, state, "98").hint == m.NO_MORE


def test_double_zero_goes_to_main_menu_from_anywhere(ctx: Context) -> None:
    deep = go(ctx, State("fr", "main"), "2", "98", "98")
    home = step(ctx, deep, "00")
    assert home == State(lang="fr", node="main")
    assert shown(ctx, home).startswith("Principal\n")


def test_help_from_anywhere_and_back(ctx: Context) -> None:
    page2 = go(ctx, State("en", "main"), "2", "98", "98")
    help_ = step(ctx, page2, "99")
    assert shown(ctx, help_) == "Help now\nCall 123.\n0 Back 00 Menu"
    assert step(ctx, help_, "99") == help_
    assert step(ctx, help_, "0") == page2
    pending = go(ctx, State("en", "main"), "3")
    assert step(ctx, pending, "99").node == "help"


def test_help_from_the_first_contact_language_list(ctx: Context) -> None:
    start = first_state(ctx.tree, None)
    help_ = step(ctx, start, "99")
    assert help_.node == "help" and help_.lang is None
    assert shown(ctx, help_).startswith("Help now\nCall 123.")
    assert shown(ctx, step(ctx, help_, "0")) == "1. English\n2. Français"


@pytest.mark.parametrize("raw", ["abc", "7", "", "   ", "1 2", "-1", "#", "999999999999"])
def test_invalid_input_reshows_the_menu_with_a_hint(ctx: Context, raw: str) -> None:
    state = State("en", "main")
    after = step(ctx, state, raw)
    assert (after.node, after.page) == ("main", 0)
    assert shown(ctx, after) == "Invalid choice\n" + EN_MAIN


@pytest.mark.parametrize("raw", ["1", "x", "", "97"])
def test_invalid_input_on_an_article_keeps_the_page(ctx: Context, raw: str) -> None:
    state = go(ctx, State("en", "main"), "2", "98")
    after = step(ctx, state, raw)
    assert (after.node, after.page) == ("long", 1)
    assert shown(ctx, after) == "Invalid choice\n" + shown(ctx, state)


def test_zero_on_the_main_menu_is_invalid(ctx: Context) -> None:
    assert shown(ctx, step(ctx, State("en", "main"), "0")) == "Invalid choice\n" + EN_MAIN


@pytest.mark.parametrize("raw", ["²", "1²", "①"])
def test_unusual_digit_characters_are_invalid_not_a_crash(ctx: Context, raw: str) -> None:
    after = step(ctx, State("en", "main"), raw)
    assert shown(ctx, after) == "Invalid choice\n" + EN_MAIN


def test_ask_chain_stores_answers_and_shows_the_service_result(ctx: Context) -> None:
    name = go(ctx, State("en", "main"), "3")
    assert name.pending == "ask_name"
    assert shown(ctx, name) == "Name\nYour name?\n0 Back 00 Menu"
    city = step(ctx, name, "  Sita   Rai ")
    assert (city.node, city.pending) == ("ask_city", "ask_city")
    assert city.answer_map == {"ask_name": "Sita Rai"}
    assert shown(ctx, city) == "City\nYour city?\n0 Back 00 Menu"
    done = step(ctx, city, "Doha")
    assert done.pending is None
    assert done.answer_map == {"ask_name": "Sita Rai", "ask_city": "Doha"}
    assert shown(ctx, done) == \
        "City\nLicensed agencies in Doha (en): none found.\n0 Back 00 Menu"


def test_numbers_are_answers_while_a_question_is_pending(ctx: Context) -> None:
    city = go(ctx, State("en", "main"), "3", "Sita")
    done = step(ctx, city, "98")
    assert done.answer_map["ask_city"] == "98"


def test_empty_answer_asks_again(ctx: Context) -> None:
    name = go(ctx, State("en", "main"), "3")
    again = step(ctx, name, "  ")
    assert again.pending == "ask_name" and again.answers == ()
    assert shown(ctx, again) == "Type an answer\nName\nYour name?\n0 Back 00 Menu"


def test_zero_while_pending_goes_back(ctx: Context) -> None:
    name = go(ctx, State("en", "main"), "3")
    city = step(ctx, name, "Sita")
    back = step(ctx, city, "0")
    assert (back.node, back.pending) == ("ask_name", "ask_name")
    assert shown(ctx, back) == "Name\nYour name?\n0 Back 00 Menu"
    assert shown(ctx, step(ctx, back, "0")) == EN_MAIN
    assert step(ctx, city, "00").node == "main"


def test_service_not_registered_says_unavailable(ctx: Context) -> None:
    done = go(ctx, State("en", "main"), "5", "Acme Manpower")
    assert done.answer_map == {"lookup": "Acme Manpower"}
    text = shown(ctx, done)
    assert text.startswith("Lookup\nSorry, the service is not available now.")
    assert len(text) <= 160


def test_resume_offer_continue_or_start_again(ctx: Context) -> None:
    previous = go(ctx, State("fr", "main"), "2", "98", "x")
    assert previous.hint == m.INVALID and is_resumable(ctx.tree, previous)
    offer = resume_offer(previous)
    assert offer.node == RESUME_NODE
    assert shown(ctx, offer) == "Reprendre là où vous étiez?\n1. Reprendre\n2. Recommencer"
    resumed = step(ctx, offer, "1")
    assert resumed == replace(previous, hint="")
    assert view(ctx, resumed).body == view(ctx, previous).body
    assert step(ctx, offer, "2") == State(lang="fr", node="main")
    assert shown(ctx, step(ctx, offer, "7")).startswith("Choix invalide\n")
    assert not is_resumable(ctx.tree, State("fr", "main"))


def test_state_json_round_trip(ctx: Context) -> None:
    state = go(ctx, State("en", "main"), "4", "98", "3", "0", "00", "3", "Sita", "x")
    state = resume_offer(state)
    assert state.resume is not None and state.resume.answers
    data = json.loads(json.dumps(state.to_json()))
    assert State.from_json(data) == state
    deep = go(ctx, State("en", "main"), "2", "98", "x")
    assert State.from_json(json.loads(json.dumps(deep.to_json()))) == deep


def test_replay_is_deterministic(ctx: Context, tree: Tree, catalogs: Catalogs,
                                 tmp_path: Path) -> None:
    inputs = ["2", "3", "Sita", "Doha", "0", "00", "4", "98", "2", "99", "0", "98"]
    one = replay(ctx, first_state(tree, None), inputs)
    two = replay(ctx, first_state(tree, None), inputs)
    assert one == two
    fresh_tree = read_tree(write_tree(tmp_path, FILES))
    fresh = Context(fresh_tree, UssdLayout(Limits()), Catalogs().gettext, {"agencies": agencies})
    three = replay(fresh, first_state(fresh_tree, None), inputs)
    assert three == one
    assert shown(fresh, three) == shown(ctx, one)


def test_node_missing_from_the_tree_falls_back_to_main(ctx: Context) -> None:
    stale = State("fr", "removed_node", page=3, history=(("main", 0),))
    assert shown(ctx, stale) == shown(ctx, State("fr", "main"))
    assert step(ctx, stale, "1") == State(lang="fr", node="main")
    no_lang = State(None, "removed_node")
    assert step(ctx, no_lang, "1") == State(lang=None, node=LANGUAGE_NODE)
    back_to_gone = State("en", "info", history=(("removed_node", 0),))
    assert shown(ctx, step(ctx, back_to_gone, "0")) == EN_MAIN
