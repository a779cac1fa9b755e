"""GSM-7 / UCS-2 detection and counting, checked against the gsm0338 codec.

``gsm0338`` is an independent implementation of 3GPP TS 23.038: encoding a
text with it fails for any character outside GSM-7, and the encoded length is
the septet count (extension characters take an escape septet plus one).
"""

from __future__ import annotations

import gsm0338  # noqa: F401 - importing registers the "gsm03.38" codec
import pytest

from ussd_app.engine.encoding import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    Encoding,
    Limits,
    detect,
    fits,
    gsm7_length,
    measure,
    sms_segments,
    ucs2_length,
)

ESC = 0x1B


def oracle(text: str) -> tuple[Encoding, int]:
    """Encoding and length as the gsm0338 codec and UTF-16 see them."""
    try:
        return Encoding.GSM7, len(text.encode("gsm03.38"))
    except UnicodeEncodeError:
        return Encoding.UCS2, sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def oracle_segments(text: str) -> int:
    """Split the encoded units greedily, never between ESC and its character,
    nor between the two halves of a surrogate pair."""
    encoding, length = oracle(text)
    if not text:
        return 0
    if encoding is Encoding.GSM7:
        units = list(text.encode("gsm03.38"))
        if length <= 160:
            return 1
        per_part, glued = 153, [i for i, u in enumerate(units) if u == ESC]
    else:
        raw = text.encode("utf-16-be")
        units = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
        if length <= 70:
            return 1
        per_part, glued = 67, [i for i, u in enumerate(units) if 0xD800 <= u < 0xDC00]
    parts, used, i = 0, per_part, 0
    while i < len(units):
        cost = 2 if i in glued else 1
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
        i += cost
    return parts


SAMPLES = {
    "plain English": "Keep your passport. Call 1234 for help!",
    "empty": "",
    "French GSM accents": "Votre employeur a le droit? Non: é è à ù ì ò É",
    "French c cedilla": "Reçu de paiement",
    "French e circumflex": "Fenêtre",
    "French o circumflex": "Contrôle",
    "oe ligature": "sœur",
    "extension chars": "^{}\\[~]|€",
    "euro price": "Fee: 500€ max [legal]",
    "form feed": "page\fbreak",
    "Arabic": "جواز سفرك ملك لك",
    "Nepali": "राहदानी तपाईंकै हो",
    "emoji outside BMP": "Help 🆘 now",
    "emoji only": "😀",
    "curly quotes": "Don’t sign “blank” papers",
    "ellipsis": "Wait…",
    "Greek capitals in GSM": "ΔΦΓΛΩΠΨΣΘΞ",
    "Nordic and German": "ÆæßÄÖÑÜäöñüÅåØø§¿¡",
    "lower-case Greek": "αβγ",
    "backtick": "`code`",
    "newline and CR": "line one\r\nline two",
    "Arabic with extension chars": "سفر {مهم}",
}


@pytest.mark.parametrize("text", SAMPLES.values(), ids=SAMPLES.keys())
def test_detect_and_measure_agree_with_gsm0338(text: str) -> None:
    assert measure(text) == oracle(text)
    assert detect(text) is oracle(text)[0]


@pytest.mark.parametrize("text", SAMPLES.values(), ids=SAMPLES.keys())
def test_sms_segments_agree_with_oracle(text: str) -> None:
    assert sms_segments(text) == (oracle(text)[0], oracle_segments(text))


def test_every_bmp_character_is_classified_like_gsm0338() -> None:
    wrong = []
    for cp in range(0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        if measure(ch) != oracle(ch):
            wrong.append(f"U+{cp:04X}")
    assert wrong == []


def test_alphabet_tables_are_the_full_gsm_alphabet() -> None:
    # 128 basic septets (ESC included) and the 10 extension characters.
    assert len(GSM7_BASIC) == 128
    assert len(GSM7_EXTENDED) == 10
    for ch in GSM7_EXTENDED:
        assert len(ch.encode("gsm03.38")) == 2


def test_one_non_gsm_character_turns_the_whole_text_into_ucs2() -> None:
    text = "a" * 100
    assert measure(text) == (Encoding.GSM7, 100)
    assert measure(text + "ç") == (Encoding.UCS2, 101)
    assert fits(text, Limits()) and not fits(text + "ç", Limits())


def test_extension_characters_count_twice_in_gsm7_only() -> None:
    assert gsm7_length("€") == 2
    assert measure("a€") == (Encoding.GSM7, 3)
    assert measure("ب€") == (Encoding.UCS2, 2)


def test_astral_characters_count_two_utf16_units() -> None:
    assert ucs2_length("😀") == 2
    assert measure("ب😀") == (Encoding.UCS2, 3)


@pytest.mark.parametrize(
    ("text", "limits", "expected"),
    [
        ("a" * 160, Limits(), True),
        ("a" * 161, Limits(), False),
        ("a" * 159 + "€", Limits(), False),
        ("a" * 158 + "€", Limits(), True),
        ("ب" * 70, Limits(), True),
        ("ب" * 71, Limits(), False),
        ("ب" * 69 + "😀", Limits(), False),
        ("ب" * 68 + "😀", Limits(), True),
        ("a" * 100, Limits(100, 50), True),
        ("a" * 101, Limits(100, 50), False),
        ("ê" * 50, Limits(100, 50), True),
        ("ê" * 51, Limits(100, 50), False),
    ],
)
def test_fits_is_exact_at_the_limit(text: str, limits: Limits, expected: bool) -> None:
    assert fits(text, limits) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (Encoding.GSM7, 0)),
        ("a", (Encoding.GSM7, 1)),
        ("a" * 160, (Encoding.GSM7, 1)),
        ("a" * 161, (Encoding.GSM7, 2)),
        ("a" * 306, (Encoding.GSM7, 2)),
        ("a" * 307, (Encoding.GSM7, 3)),
        ("a" * 459, (Encoding.GSM7, 3)),
        ("a" * 460, (Encoding.GSM7, 4)),
        ("€" * 80, (Encoding.GSM7, 1)),
        ("€" * 81, (Encoding.GSM7, 2)),
        ("ب" * 70, (Encoding.UCS2, 1)),
        ("ب" * 71, (Encoding.UCS2, 2)),
        ("ب" * 134, (Encoding.UCS2, 2)),
        ("ب" * 135, (Encoding.UCS2, 3)),
        ("a" * 70 + "ç", (Encoding.UCS2, 2)),
        ("😀" * 35, (Encoding.UCS2, 1)),
        ("😀" * 36, (Encoding.UCS2, 2)),
    ],
)
def test_sms_segment_boundaries(text: str, expected: tuple[Encoding, int]) -> None:
    assert sms_segments(text) == expected
    assert oracle_segments(text) == expected[1]


def test_extension_char_at_a_part_boundary_moves_to_the_next_part() -> None:
    # 306 septets would be exactly two parts of 153, but the escape pair
    # cannot straddle the boundary after 152 characters: three parts.
    text = "a" * 152 + "€" + "a" * 152
    assert gsm7_length(text) == 306
    assert sms_segments(text) == (Encoding.GSM7, 3)
    # One character earlier the pair fits in part one: two parts.
    moved = "a" * 151 + "€" + "a" * 153
    assert gsm7_length(moved) == 306
    assert sms_segments(moved) == (Encoding.GSM7, 2)


def test_surrogate_pair_at_a_part_boundary_moves_to_the_next_part() -> None:
    text = "ب" * 66 + "😀" + "ب" * 66
    assert ucs2_length(text) == 134
    assert sms_segments(text) == (Encoding.UCS2, 3)
    moved = "ب" * 65 + "😀" + "ب" * 67
    assert sms_segments(moved) == (Encoding.UCS2, 2)


@pytest.mark.parametrize("n", range(150, 170))
@pytest.mark.parametrize("ext", ["€", "^", "\\"])
def test_sms_segments_with_extension_chars_sweep(n: int, ext: str) -> None:
    text = "a" * n + ext + "b" * n
    assert sms_segments(text) == (Encoding.GSM7, oracle_segments(text))
