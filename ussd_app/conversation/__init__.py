"""The conversation core, shared by the USSD, SMS and voice channels.

``inbound``: the one inbound shape and the caller's identity; ``codec``: the
engine state as stored; ``core``: stepping the engine with its actions done;
``effects``: applying a step's events. Each channel centre reads as parse ->
step -> apply -> render, and none of them names a flow's fields.
"""

from ussd_app.conversation.codec import dump_state, load_state
from ussd_app.conversation.core import Conversation, recordings_expected, with_spoken
from ussd_app.conversation.effects import (
    ARTICLE_SEGMENTS,
    apply_events,
    contact_list_body,
    into_store,
    sms_item,
)
from ussd_app.conversation.inbound import CLOSE, NEW, RESUME, Caller, Inbound, identify

__all__ = ["ARTICLE_SEGMENTS", "CLOSE", "Caller", "Conversation", "Inbound", "NEW", "RESUME",
           "apply_events", "contact_list_body", "dump_state", "identify", "into_store",
           "load_state", "recordings_expected", "sms_item", "with_spoken"]
