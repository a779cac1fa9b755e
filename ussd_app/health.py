"""``GET /healthz``: is this deployment able to answer callers, and with what."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

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
        "time": time.time(),
    }), code


def _agencies(services: Any) -> dict[str, object] | None:
    registry = services.ussd.services.get("agency_search")
    return registry.health() if hasattr(registry, "health") else None


def _voice(services: Any, tree: Any) -> dict[str, object] | None:
    """Prompts per language (recorded, stale, generated, missing), recordings and call-backs
    waiting: what an admin checks after a content change or a provider outage."""
    try:
        found: dict[str, object] = {}
        if services.prompts is not None and tree is not None:
            found["prompts"] = {lang: {k: v for k, v in row.items() if k != "bytes"}
                                for lang, row in services.prompts.status(tree, services.t).items()}
        if services.recordings is not None:
            found["recordings"] = services.recordings.counts()
        return found
    except Exception as exc:  # never a failed health check for a side table
        return {"error": str(exc)[:200]}
