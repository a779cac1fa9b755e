"""One e-mail through the configured SMTP server (``MIGRANTLINE_SMTP_*``).

Partner referral notices and urgent-case alerts use it. Neither carries personal data,
so plain SMTP with STARTTLS (on by default) is enough.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from ussd_app import settings


def send_mail(config: settings.Settings, to: str, subject: str, body: str,
              timeout: float) -> None:
    """Send it, or raise (``OSError``, ``smtplib.SMTPException``): the caller decides."""
    message = EmailMessage()
    message["From"] = config.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(config.smtp_host or "", config.smtp_port, timeout=timeout) as smtp:
        if config.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.smtp_user:
            smtp.login(config.smtp_user, config.smtp_password or "")
        smtp.send_message(message)
