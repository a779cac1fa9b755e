"""``GET /healthz``: is this deployment able to answer callers, and with what."""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from . import jobs
from .sync import health as sync_health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    services = current_app.extensions["migrantline"]
    content = services.content.health()
    database = services.store.health()
    tree = services.content.current
    missing = services.catalogs.missing(tree.language_codes) if tree else []
    if content["status"] == "error" or database["status"] == "error":
        status, code = "error", 503
    elif content["status"] != "ok" or database["status"] != "ok" or missing:
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return jsonify({
        "status": status,
        "content_version": content["version"],
        "content": content,
        "database": database,
        "translations_missing": missing,
        "sync": sync_health(services.config),  # the last content sync; never degrades status
        "agencies": _agencies(services),
        "voice": _voice(services, tree),  # never degrades status: the provider's voice covers
        # per channel: signature, token(+ip), or its opt-out; and whether insecure/demo
        **current_app.extensions["webhook_auth"].health(),
        "time": time.time(),
    }), code


def _agencies(services: Any) -> dict[str, object] | None:
    registry = services.ussd.services.get("agency_search")
    return registry.health() if hasattr(registry, "health") else None


VOICE_SUMMARY_SECONDS = 60.0
# Per prompt library (one per app): "at", "version", "prompts" of the last count made.
_voice_summaries: dict[int, dict[str, Any]] = {}
_voice_lock = threading.Lock()


def _voice(services: Any, tree: Any) -> dict[str, object] | None:
    """Prompts per language (recorded, stale, generated, missing), recordings waiting:
    what an admin checks after a content change or a provider outage.

    Counting the prompts looks at a few files each (about 150 ms for the demo), so it is
    made in the background at most once a minute and /healthz shows the last count: a
    monitor never waits on it.
    """
    try:
        found: dict[str, object] = {}
        if services.prompts is not None and tree is not None:
            found["prompts"] = _prompt_summary(services, tree)
        if services.recordings is not None:
            found["recordings"] = services.recordings.counts()
        return found
    except Exception as exc:  # never a failed health check for a side table
        return {"error": str(exc)[:200]}


def _prompt_summary(services: Any, tree: Any) -> object:
    with _voice_lock:
        kept = _voice_summaries.setdefault(id(services.prompts), {})
        summary = dict(kept)
        fresh = summary.get("version") == tree.version and \
            time.monotonic() - summary.get("at", 0.0) < VOICE_SUMMARY_SECONDS
        if not fresh and not kept.get("busy"):
            kept["busy"] = True
            jobs.once(lambda: _count_prompts(services, tree, kept), "voice-health")
    if summary.get("version") != tree.version:
        return "counting"  # the first count of this content version is being made
    return summary["prompts"]


def _count_prompts(services: Any, tree: Any, kept: dict[str, Any]) -> None:
    try:
        matrix = services.prompts.status(tree, services.t)
        prompts = {lang: {k: v for k, v in row.items() if k != "bytes"}
                   for lang, row in matrix.items()}
        with _voice_lock:
            kept.update(at=time.monotonic(), version=tree.version, prompts=prompts)
    finally:
        with _voice_lock:
            kept["busy"] = False
