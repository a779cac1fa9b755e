"""The WSGI application the production server imports in each worker."""

import gc
import os

from ussd_app.web import create_app

# Whatever server imports this (granian via `migrantline serve`, or another), the files the
# service creates (database WAL, generated and dynamic audio, the outbox journal) are
# readable by its own user only.
os.umask(0o077)
app = create_app()
# The content tree and its page cache live as long as the worker: keep them out of
# the garbage collector's way, so collections stay short on the request path.
gc.collect()
gc.freeze()
