"""Logging set once per process: our records, and HTTP clients kept quiet."""

from __future__ import annotations

import logging


def configure(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_http_clients()


# HTTP clients that log whole request URLs (Kannel's carries the number and the text
# in its query) or headers: never below WARNING, whatever MIGRANTLINE_LOG_LEVEL says.
NOISY_LOGGERS = ("urllib3", "twilio.http_client", "requests")


def quiet_http_clients() -> None:
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
