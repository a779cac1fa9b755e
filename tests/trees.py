"""A small valid content tree (English and French) that tests change one file at a time."""

from __future__ import annotations

SITE = """\
name: Test tree
languages:
  - code: en
    name: English
  - code: fr
    name: Français
default_language: en
main: main
help: help_now
"""
LANGUAGE = "id: language\ntype: language\ntitle:\n  en: Language\n  fr: Langue\n"
MAIN = """\
id: main
type: menu
title:
  en: Main
  fr: Principal
options:
  - info
  - help_now
  - language
"""
INFO = """\
id: info
type: article
title:
  en: Info
  fr: Infos
body:
  en: Keep your passport.
  fr: Gardez votre passeport.
"""
