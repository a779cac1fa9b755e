"""``/audio/<root>/<path>``: the prompt audio the providers fetch while a call is on.

Only files under the library's folders (the recordings dirs, the generated
and dynamic caches) are served, and only real audio. URLs carry ``?v=`` (the
content hash), so a re-recording is a new URL and a cached old one is never
played; the strong ETag lets a provider's cache ask again cheaply.
"""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request

bp = Blueprint("audio", __name__)
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _library():  # the PromptLibrary of this app
    services = current_app.extensions["migrantline"]
    library = getattr(services, "prompts", None)
    if library is None:
        abort(404)
    return library


def safe_file(roots: dict[str, Path], subpath: str) -> Path | None:
    """The file ``subpath`` names under one of ``roots``, or None for anything else."""
    parts = subpath.split("/")
    if len(parts) < 2 or parts[0] not in roots:
        return None
    rest = parts[1:]
    if any(not _SEGMENT.fullmatch(p) or ".." in p for p in rest):
        return None
    if not rest[-1].lower().endswith((".wav", ".mp3")):
        return None
    root = roots[parts[0]].resolve()
    path = root.joinpath(*rest)
    try:
        resolved = path.resolve(strict=True)
        resolved.relative_to(root)  # a symlink out of the folder is not served
    except (OSError, ValueError, RuntimeError):
        return None
    return resolved if resolved.is_file() else None


@bp.route("/audio/<path:subpath>", methods=["GET"], merge_slashes=False)  # HEAD from GET
def audio(subpath: str) -> Response:
    library = _library()
    path = safe_file(library.roots, subpath)
    if path is None:
        abort(404)
    info = library.files.get(path)
    if info is None:  # not audio (or cut short): never served
        abort(404)
    mime, digest = info
    etag = digest
    if request.if_none_match and request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        try:
            data = path.read_bytes()
        except OSError:
            abort(404)
        response = Response(data, mimetype=mime)
    response.set_etag(etag)
    versioned = request.args.get("v") == digest[:8]
    response.headers["Cache-Control"] = ("public, max-age=31536000, immutable" if versioned
                                         else "public, max-age=300")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
