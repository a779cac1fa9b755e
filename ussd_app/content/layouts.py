"""The layouts a content tree is paged for: the USSD screen and the two SMS replies.

Built from the settings in one place, so the tree a deployment checks (``content
check``, publish, sync) is paged exactly as the channels will send it.
"""

from __future__ import annotations

from typing import Any

from sms_flows.layout import SmsLayout
from ussd_app import settings
from ussd_app.channels.ussd.layout import UssdLayout
from ussd_app.engine.encoding import Limits


def ussd_limits(config: settings.Config) -> Limits:
    config = settings.of(config)
    return Limits(gsm7=config.ussd_max_gsm7, ucs2=config.ussd_max_ucs2)


def sms_layouts(config: settings.Settings) -> tuple[Any, Any]:
    """The SMS layouts: menu replies, and articles asked for by SMS."""
    return (SmsLayout(config.sms_max_segments,
                      node_types=("menu", "contacts", "ask", "language")),
            SmsLayout(config.sms_article_max_segments,
                      node_types=("article",)))


def content_layouts(config: settings.Config) -> list[Any]:
    """Every layout a tree is paged for before it is served (sync checks with the same)."""
    config = settings.of(config)
    return [UssdLayout(ussd_limits(config)), *sms_layouts(config)]
