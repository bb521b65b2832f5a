"""Per-file completeness in the API: `GET /api/hosts/<host>/files` (from the consumer's coverage
and heartbeats) and `GET /api/hosts/<host>/verify` (recomputed from the stored records), and
the per-host health `GET /api/hosts` adds (worst lag, any gap, silent)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from webui import formats
from webui.queries import get_reader

bp = Blueprint("coverage", __name__, url_prefix="/api")


def _settings() -> tuple[float, float | None]:
    config = current_app.config["OPSLOG"]
    return float(current_app.config["OPSLOG_STALE_AFTER"]), config.mongo.retention


def add_health(rows: list[dict[str, Any]]) -> None:
    """Each host row gets `lag_bytes`, `lag_seconds`, `has_gap` and `silent` (None: no heartbeat yet)."""
    health = get_reader().files_health(*_settings())
    for row in rows:
        found = health.get(row["host"], {})
        row.update(lag_bytes=found.get("lag_bytes", 0), lag_seconds=found.get("lag_seconds", 0.0),
                   has_gap=found.get("has_gap", False), silent=found.get("silent"),
                   last_heartbeat_at=found.get("last_heartbeat_at"))


@bp.get("/hosts/<host>/files")
def files(host: str):
    return formats.json_response(formats.json_ready({"files": get_reader().files(host, *_settings())}))


@bp.get("/hosts/<host>/verify")
def verify(host: str):
    reports = get_reader().verify(host, *_settings())
    return formats.json_response(formats.json_ready({"files": reports, "verified": True,
                                                     "has_gap": any(r["gaps"] for r in reports)}))
