"""The dashboard's blueprint, apart so that every view module can register on it."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("dashboard", __name__, url_prefix="/operator", template_folder="templates",
               static_folder="static")
