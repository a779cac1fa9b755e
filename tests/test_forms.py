"""``forms.parse_form`` reads every body as ``parse_qsl`` does (it replaced it on the
USSD and voice webhooks' path)."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest
import werkzeug  # noqa: F401 - registers the "werkzeug.url_quote" error handler

from ussd_app.forms import parse_form

ALPHABET = ["a", "Z", "0", "=", "&", "+", "%", "%2", "%2B", "%2b", "%zz", "%E0%A4%A8",
            "%FF", "%C3", " ", "é", "नेपाली", ";", "*", "#", ""]


def bodies(n: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    found = ["", "&", "&&", "=", "==", "a", "a=", "=b", "a=b=c", "a&b", "+", "%", "a=%",
             "sessionId=ATUid_1&phoneNumber=%2B254700000001&serviceCode=%2A384%23&text=1%2A2",
             "CallSid=CA1&From=%2B9779800000001&Digits=00&CallStatus=in-progress"]
    found += ["".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(1, 30)))
              for _ in range(n)]
    return found


@pytest.mark.parametrize("errors", ["replace", "werkzeug.url_quote"])
def test_parse_form_is_parse_qsl(errors: str) -> None:
    for body in bodies(3000, seed=20):
        assert parse_form(body, errors) == parse_qsl(body, keep_blank_values=True,
                                                     errors=errors), body


def test_form_answers_as_werkzeugs_multidict() -> None:
    from werkzeug.datastructures import MultiDict

    from ussd_app.forms import Form

    for body in bodies(500, seed=7):
        pairs = parse_form(body)
        form, multi = Form(pairs), MultiDict(pairs)
        assert sorted(set(form)) == sorted(set(multi)), body
        for name in [*multi, "absent"]:
            assert form.get(name, "") == multi.get(name, ""), (body, name)
            assert form.getlist(name) == multi.getlist(name), (body, name)
