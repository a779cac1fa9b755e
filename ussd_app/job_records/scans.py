"""What an uploaded scan really is, read from its first bytes, never from its name.

A file called ``contract.pdf`` may be anything; only a PDF, a JPEG or a PNG is
kept, known by its signature ("magic bytes"). A file over ``MAX_SCAN_BYTES``
is refused before it is read further.
"""

from __future__ import annotations

import re

from ussd_app.engine.messages import N_

MAX_SCAN_BYTES = 8 * 1024 * 1024  # a phone photo of a page, or a scanned PDF, fits
# The one path whose body may be bigger than the app's 64 KB: a scan's upload (the server
# and the app both let it through; the view checks the scan's own limit).
UPLOAD_PATH = re.compile(r"^/operator/records/[0-9]{1,12}/scans$")
UPLOAD_MAX_BODY = MAX_SCAN_BYTES + 64 * 1024  # the scan and its form's other fields
_SIGNATURES = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"\x89PNG\r\n\x1a\n", "image/png"))
NOT_A_SCAN = N_("This file is not a PDF, JPEG or PNG (whatever its name says): not kept.")
TOO_LARGE = N_("This file is larger than %(limit)s MB: not kept.")
EMPTY = N_("Choose a file first.")


def sniff(data: bytes) -> str | None:
    """The file's type by its content (``application/pdf``, ``image/jpeg``,
    ``image/png``), or None for anything else."""
    for signature, mimetype in _SIGNATURES:
        if data.startswith(signature):
            return mimetype
    return None
