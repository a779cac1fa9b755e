"""``GET /healthz``: is this deployment able to answer callers, and with what."""

from __future__ import annotations

import shutil
import threading
import time
from typing import Any

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from ussd_app import jobs, settings
from ussd_app.content.sync import health as sync_health
from ussd_app.store.base import DB_ERRORS

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    services = current_app.extensions["migrantline"]
    content = services.content.health()
    database = services.store.health()
    tree = services.content.current
    missing = services.catalogs.missing(tree.language_codes) if tree else []
    problems, checks = _problems(services)
    if content["status"] == "error" or database["status"] == "error" or problems:
        status, code = "error", 503
    elif content["status"] != "ok" or database["status"] != "ok" or missing:
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return jsonify({
        "status": status,
        "problems": problems,  # why filings or messages would fail now; empty when none
        **checks,
        "content_version": content["version"],
        "content": content,
        "database": database,
        "translations_missing": missing,
        "sync": sync_health(services.config),  # the last content sync; never degrades status
        "agencies": _agencies(services),
        "partners": _partners(services),  # each partner centre's link; never degrades status
        "voice": _voice(services, tree),  # never degrades status: the provider's voice covers
        # per channel: signature, token(+ip), or its opt-out; and whether insecure/demo
        **current_app.extensions["webhook_auth"].health(),
        "time": time.time(),
    }), code


def _problems(services: Any) -> tuple[list[str], dict[str, object]]:
    """What stops this deployment from keeping a filing or sending a message, and the
    figures behind it: a write to the database, free disk, background jobs, the outbox.

    Each is cheap (the write probe is cached a few seconds, the rest are a system
    call or an indexed query): /healthz is polled, and nothing here waits on the network.
    """
    config, store = services.config, services.store
    data_dir = store.path.parent
    problems: list[str] = []
    probe = store.write_probe()
    if probe:
        problems.append(probe)
    disk: dict[str, object] = {}
    try:
        min_free = config.min_free_mb
        free = shutil.disk_usage(data_dir).free // (1024 * 1024)
        disk = {"free_mb": free, "min_free_mb": min_free}
        if free < min_free:
            problems.append(f"the disk holding {data_dir} has {free} MB free, less than "
                            f"MIGRANTLINE_MIN_FREE_MB ({min_free})")
    except OSError as exc:
        problems.append(f"free disk space unknown: {exc}")
    beats = jobs.heartbeats(str(data_dir))
    problems += [p for p in (h.problem() for h in beats) if p]
    outbox = _outbox(config, store, problems)
    return problems, {"disk": disk, "jobs": [h.as_dict() for h in beats], "outbox": outbox}


def _outbox(config: settings.Settings, store: Any, problems: list[str]) -> dict[str, object]:
    """The age of the oldest message waiting to be sent, checked only with a real provider:
    with ``outbox`` (store only) messages wait by design. Whatever runs the worker (this
    process or ``migrantline outbox send --forever``), a message that waits too long means
    callers are not getting their receipts and answers."""
    provider, max_age = config.sms_provider, config.outbox_max_age_minutes
    try:
        oldest = store.oldest_unsent()
    except DB_ERRORS as exc:
        problems.append(f"outbox not checked: {exc}")
        return {"provider": provider}
    age = None if oldest is None else round((time.time() - oldest) / 60, 1)
    checked = provider != "outbox" and max_age > 0
    if checked and age is not None and age > max_age:
        problems.append(f"the oldest SMS waiting in the outbox was stored {age:g} minutes ago, "
                        f"more than MIGRANTLINE_OUTBOX_MAX_AGE_MINUTES ({max_age}): is the "
                        f"outbox worker running and {provider} reachable?")
    return {"provider": provider, "oldest_unsent_minutes": age, "max_age_minutes": max_age,
            "checked": checked}


def _partners(services: Any) -> list[dict[str, object]] | dict[str, str]:
    """Each partner centre's link: last delivery, messages waiting and the oldest waiting
    (an indexed query per centre). A centre that is down is its own business: it never
    makes this deployment unhealthy; the monitor reads the figures."""
    try:
        return [{"id": r["id"], "name": r["name"], "country": r["country"],
                 "revoked": r["revoked_at"] is not None, "last_delivery": r["last_delivery"],
                 "queued": r["queued"], "oldest_undelivered": r["oldest_undelivered"],
                 "oldest_undelivered_minutes": r["oldest_undelivered_minutes"],
                 "refused": r["refused"], "last_error": r["last_error"]}
                for r in services.centres.links()] if services.centres is not None else []
    except DB_ERRORS as exc:
        return {"error": str(exc)[:200]}


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
