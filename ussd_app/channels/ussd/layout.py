"""A USSD screen: lines of text within the per-encoding character limit, right-to-left
lines and the numbers in them marked so a handset draws them in order (``engine.bidi``).
Shared by the endpoint, the content checks and the preview, so the screen checked is
the screen sent."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ussd_app.engine import messages as m
from ussd_app.engine.bidi import for_display
from ussd_app.engine.encoding import Encoding, Limits, detect, fits
from ussd_app.engine.screens import Screen, Translate


@dataclass(frozen=True)
class UssdLayout:
    """A USSD screen: lines of text within the per-encoding character limit."""

    limits: Limits

    @property
    def key(self) -> str:
        return f"ussd:{self.limits.gsm7}:{self.limits.ucs2}"

    def render(self, screen: Screen, t: Translate) -> str:
        return for_display(self._lines(screen, t), screen.lang)

    def _lines(self, screen: Screen, t: Translate) -> str:
        option, item = _formats(t, screen.lang)
        lines = [line for line in (screen.hint, screen.title, screen.body) if line]
        lines += [option.format(key=key, label=label) for key, label in screen.options]
        if screen.nav:
            # An option of the screen (1 Add details) among the keys that move (98 More) is
            # missed: each option gets a line of its own above them (a newline costs what
            # a space does), the moving keys stay on the last line.
            own = [(k, label) for k, label in screen.nav if len(k) == 1 and k != "0"]
            moves = [(k, label) for k, label in screen.nav if (k, label) not in own]
            lines += [item.format(key=key, label=label) for key, label in own]
            if moves:
                lines.append(" ".join(item.format(key=key, label=label)
                                      for key, label in moves))
        return "\n".join(lines)

    def fits(self, text: str) -> bool:
        return fits(text, self.limits)

    def limit_for(self, text: str) -> int:
        """Most characters a screen showing (part of) ``text`` can hold."""
        return self.limits.gsm7 if detect(text) is Encoding.GSM7 else self.limits.ucs2


@lru_cache(maxsize=256)
def _formats(t: Translate, lang: str) -> tuple[str, str]:
    """The option-line and nav-item patterns of a language, looked up once."""
    return t(lang, m.OPTION_LINE), t(lang, m.NAV_ITEM)

