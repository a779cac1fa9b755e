"""The WSGI application the production server imports in each worker."""

import gc

from ussd_app import create_app

app = create_app()
# The content tree and its page cache live as long as the worker: keep them out of
# the garbage collector's way, so collections stay short on the request path.
gc.collect()
gc.freeze()
