"""The engine state as stored between inputs, on every channel.

JSON, sealed (``privacy.seal_text``) once it holds what the caller typed;
an unreadable one (the secret key changed) reads as none, so the caller
starts again rather than fails.
"""

from __future__ import annotations

import json

from ussd_app.engine.machine import State
from ussd_app.privacy.protect import Sealer, open_text, seal_text


def dump_state(sealer: Sealer, state: State, sealed: bool | None = None) -> str:
    """The state to store; sealed when ``sealed``, by default when it holds answers."""
    data = json.dumps(state.to_json(), ensure_ascii=False)
    return seal_text(sealer, data) if (bool(state.answers) if sealed is None else sealed) \
        else data


def load_state(sealer: Sealer, stored: str) -> State | None:
    """The stored state, or None: nothing stored, or it cannot be opened or read."""
    try:
        data = json.loads(open_text(sealer, stored) or "null")
        return State.from_json(data) if data else None
    except Exception:  # the secret key changed, or a row from before: start again
        return None


__all__ = ["dump_state", "load_state"]
