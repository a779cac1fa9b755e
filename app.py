"""WSGI entry point: ``app`` is the MigrantLine service, built by ``create_app()``."""

from ussd_app.web import create_app

app = create_app()
