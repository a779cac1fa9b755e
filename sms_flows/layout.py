"""An SMS screen: the same Screen a USSD caller sees, as a text message.

A menu reply stays within ``max_segments`` SMS parts (default 2), paging
behind "98 More" like every channel; an article may use a layout with more
parts, sent concatenated.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ussd_app.engine import messages as m
from ussd_app.engine.bidi import for_display
from ussd_app.engine.encoding import Encoding, detect, sms_segments
from ussd_app.engine.screens import Screen, Translate

SMS_REPLY = m.N_("Reply:")


@dataclass(frozen=True)
class SmsLayout:
    max_segments: int = 2
    # The node types shown with this layout (SMS sends articles with more parts than
    # menus); the content check pages each type only for the layouts that show it.
    node_types: tuple[str, ...] = ()
    # An article asked for by SMS is sent whole: its short version is USSD's and voice's.
    full_articles: bool = True

    @property
    def key(self) -> str:
        return f"sms:{self.max_segments}"

    def render(self, screen: Screen, t: Translate) -> str:
        option, item, reply = _formats(t, screen.lang)
        lines = [line for line in (screen.hint, screen.title, screen.body) if line]
        lines += [option.format(key=key, label=label) for key, label in screen.options]
        if screen.nav:
            lines.append(reply + " " + ", ".join(item.format(key=key, label=label)
                                                 for key, label in screen.nav))
        return for_display("\n".join(lines), screen.lang)

    def fits(self, text: str) -> bool:
        return sms_segments(text)[1] <= self.max_segments

    def limit_for(self, text: str) -> int:
        """Most characters ``max_segments`` parts hold in the encoding ``text`` forces."""
        single, part = (160, 153) if detect(text) is Encoding.GSM7 else (70, 67)
        return single if self.max_segments == 1 else part * self.max_segments


@lru_cache(maxsize=256)
def _formats(t: Translate, lang: str) -> tuple[str, str, str]:
    return t(lang, m.OPTION_LINE), t(lang, m.NAV_ITEM), t(lang, SMS_REPLY)
