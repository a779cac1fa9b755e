"""The WSGI application the production server imports in each worker."""

from ussd_app import create_app

app = create_app()
