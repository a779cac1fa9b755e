"""The screen for a state: a node's page, the resume and SMS screens, the hint.

Pure like the rest of the engine; the one thing it calls is a ``Service``
(an agency search) the channel passed in ``Context``, for an ask node's
results.
"""

from __future__ import annotations

from dataclasses import replace

from ussd_app.engine import messages as m
from ussd_app.engine.answers import choice_pages, confirm_pages, is_templated, result_pages
from ussd_app.engine.fitting import longest_hint, menu_pages, text_pages
from ussd_app.engine.keys import action_keys
from ussd_app.engine.model import ARTICLE, ASK, CHOICE, CONFIRM, LANGUAGE, RESULT, Node
from ussd_app.engine.paging import first_contact_pages, has_short, node_pages, short_pages
from ussd_app.engine.screens import Screen
from ussd_app.engine.state import (
    ITEM_FIELD,
    NO_SMS_NODE,
    RESUME_NODE,
    SMS_CONFIRM_NODE,
    SMS_SENT_NODE,
    Context,
    Listing,
    State,
    first_state,
)
from ussd_app.errors import FitError


def page_count(ctx: Context, state: State, node: Node) -> int:
    return screens_of(ctx, state, node)[0].pages


def screens_of(ctx: Context, state: State, node: Node) -> list[Screen]:
    lang = ctx.lang(state)
    if node.type == ASK and not state.pending:
        return _service_pages(ctx, state, node, lang)
    if node.type == CONFIRM:
        return confirm_pages(ctx.tree, node, lang, state.answer_map, ctx.layout, ctx.t,
                             longest_hint(lang, ctx.t))
    if node.type == CHOICE and is_templated(node):
        return choice_pages(ctx.tree, node, lang, state.answer_map, ctx.layout, ctx.t)
    if node.type == RESULT:
        return result_pages(ctx.tree, node, lang, state.answer_map, ctx.layout, ctx.t,
                            longest_hint(lang, ctx.t))
    if node.type == LANGUAGE and state.lang is None:  # the first screen, before a language
        return first_contact_pages(ctx.tree, node, ctx.layout, ctx.t)
    if not state.full and has_short(node, ctx.layout, lang):
        try:
            return short_pages(ctx.tree, node, lang, ctx.layout, ctx.t)
        except FitError:  # keys too long for this screen (the check refuses it): in full
            pass
    return node_pages(ctx.tree, node, lang, ctx.layout, ctx.t, root=node.id == ctx.tree.main)


def service_answer(ctx: Context, state: State, node: Node, lang: str) -> Listing:
    """What the node's service says about the caller's answer (or the item they opened)."""
    service = (ctx.services or {}).get(node.service or "")
    answers = state.answer_map
    answer = answers.get(node.id + ITEM_FIELD) or answers.get(node.id, "")
    prefer = tuple(answers[f].upper() for f in node.prefer_from
                   if len(answers.get(f, "")) == 2)  # a country's code, not "other"
    if service is None:
        found: str | Listing = ctx.t(lang, m.UNAVAILABLE)
    else:
        found = service(answer, lang, prefer) if prefer else service(answer, lang)
    return found if isinstance(found, Listing) else Listing(found)


def _service_pages(ctx: Context, state: State, node: Node, lang: str) -> list[Screen]:
    body = service_answer(ctx, state, node, lang).text
    keys = tuple((k, ctx.tree.label(o, lang)) for k, o in zip(action_keys(node),
                                                              node.options, strict=True))
    return text_pages(lang, ctx.tree.text(node.title, lang), body, ctx.layout, ctx.t,
                      (*keys, ("0", m.BACK)), node.id, by_line=True,
                      reserve=longest_hint(lang, ctx.t))


def view(ctx: Context, state: State) -> Screen:
    """The screen for a state, with its hint when it fits."""
    lang = ctx.lang(state)
    if state.node == RESUME_NODE:
        options = (("1", ctx.t(lang, m.RESUME_CONTINUE)), ("2", ctx.t(lang, m.RESUME_RESTART)))
        screen = menu_pages(lang, "", ctx.t(lang, m.RESUME_QUESTION), options, ctx.layout,
                            ctx.t, (), RESUME_NODE, longest_hint(lang, ctx.t))[0]
    elif state.node == SMS_CONFIRM_NODE:
        options = (("1", ctx.t(lang, m.SMS_YES)), ("2", ctx.t(lang, m.SMS_NO)))
        asked = ctx.tree.nodes.get(state.sms or "")
        question = m.SMS_FULL_QUESTION if asked is not None and asked.type == ARTICLE \
            else m.SMS_QUESTION
        screen = menu_pages(lang, "", ctx.t(lang, question), options, ctx.layout,
                            ctx.t, (("0", m.BACK),), SMS_CONFIRM_NODE,
                            longest_hint(lang, ctx.t))[0]
    elif state.node == NO_SMS_NODE:
        screen = text_pages(lang, "", ctx.t(lang, m.NO_SMS), ctx.layout, ctx.t,
                            (("2", m.READ_FULL), ("0", m.BACK)), NO_SMS_NODE,
                            reserve=longest_hint(lang, ctx.t))[0]
    elif state.node == SMS_SENT_NODE:
        screen = text_pages(lang, "", ctx.t(lang, m.SMS_QUEUED), ctx.layout, ctx.t,
                            (("0", m.BACK),), SMS_SENT_NODE, reserve=longest_hint(lang, ctx.t))[0]
    else:
        node = ctx.tree.nodes.get(state.node)
        if node is None:
            return view(ctx, first_state(ctx.tree, state.lang))
        pages = screens_of(ctx, state, node)
        screen = pages[min(state.page, len(pages) - 1)]
    if state.hint:
        return _with_hint(ctx, screen, ctx.t(lang, state.hint))
    return screen


def _with_hint(ctx: Context, screen: Screen, hint: str) -> Screen:
    """Hint above the screen; else in place of the title; else left out."""
    for candidate in (screen.with_hint(hint), replace(screen, title="", hint=hint)):
        if ctx.layout.fits(ctx.layout.render(candidate, ctx.t)):
            return candidate
    return screen

