"""Playing a complaint's voice recording: the audio behind the detail page's player.

A recording is the caller's own voice, personal data as much as their
number: the same sign-in as the complaint's page, and every request for its
bytes (a play, a seek) is an audit row. The bytes are decrypted for the
request and never cached (the blueprint sends ``Cache-Control: no-store``).
Range requests are answered (206) so that a browser can seek.
"""

from __future__ import annotations

from flask import Response, abort, request
from flask.typing import ResponseReturnValue

from ussd_app.channels.voice.recordings import NotStored
from ussd_app.dashboard.auth import audit
from ussd_app.dashboard.blueprint import bp
from ussd_app.dashboard.detail_views import _complaint
from ussd_app.dashboard.queue_views import services


@bp.get("/complaints/<int:cid>/recordings/<int:rid>")
def recording(cid: int, rid: int) -> ResponseReturnValue:
    _complaint(cid)  # 404 for an unknown complaint, as its page
    recordings = services().recordings
    found = recordings.get(rid) if recordings is not None else None
    if found is None or int(found["complaint_id"]) != cid:
        abort(404)
    try:
        data, mimetype = recordings.audio(rid)
    except NotStored:
        abort(404)
    wanted = request.headers.get("Range", "")
    audit("play_recording", cid, f"recording {rid}" + (f" {wanted[:40]}" if wanted else ""))
    response = Response(data, mimetype=mimetype or "application/octet-stream")
    response.headers["Content-Disposition"] = "inline"
    # Answers Range with 206 (or 416), from the bytes in memory; the full body otherwise.
    return response.make_conditional(request, accept_ranges=True, complete_length=len(data))
