"""Saved searches: `GET/POST /api/searches`, `GET/PUT/DELETE /api/searches/<id>`, and the
permalink `/searches/<id>` that opens one on the search page.

Who sees what: a search is private to its owner unless `shared`; a shared one is listed for
everyone. Writing needs the editor role, and changing or deleting a search needs to own it
(or to be an admin). A search someone may not see answers 404, as if it did not exist.
PUT changes the fields it is given (`{"name": "new"}` renames) and keeps the others.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, request, url_for

from common.roles import allows
from webui.accounts import NameTaken, get_accounts
from webui.auth import current_role, require_role
from webui.formats import json_ready, json_response
from webui.params import ParamError, max_window
from webui.saved_body import check_body, search_query

bp = Blueprint("saved", __name__)
_SEARCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _check(current: dict[str, Any] | None = None) -> dict[str, Any]:
    config = current_app.config["OPSLOG"]
    widest = max_window(config.mongo.retention).total_seconds()
    return check_body(request.get_json(silent=True), config.webui.default_window, widest, current)


def _may_see(doc: dict[str, Any]) -> bool:
    return doc["owner"] == g.user or doc.get("shared", False) or current_role() == "admin"


def _may_change(doc: dict[str, Any]) -> bool:
    return allows(current_role(), "editor") and (doc["owner"] == g.user or current_role() == "admin")


def _visible(search_id: str) -> dict[str, Any]:
    doc = get_accounts().search(search_id) if _SEARCH_ID.match(search_id) else None
    if doc is None or not _may_see(doc):
        abort(404, description="no saved search with this id")
    return doc


def _changeable(search_id: str) -> dict[str, Any]:
    doc = _visible(search_id)
    if not _may_change(doc):
        abort(403, description=f"only its owner ({doc['owner']}) or an admin may change this saved search")
    return doc


def as_json(doc: dict[str, Any]) -> dict[str, Any]:
    query = search_query(doc)
    return json_ready({
        "id": doc["_id"], "name": doc["name"], "owner": doc["owner"], "shared": doc.get("shared", False),
        "q": doc.get("q", ""), "filters": doc.get("filters") or {}, "since": doc.get("since"),
        "columns": doc.get("columns") or [], "created": doc["created"], "updated": doc["updated"],
        "url": url_for("pages.search") + ("?" + query if query else ""),
        "permalink": url_for("saved.open_search", search_id=doc["_id"]),
        "editable": _may_change(doc)})


def _name_taken(name: str) -> ParamError:
    return ParamError("name", f"you already have a saved search named {name!r}")


@bp.get("/api/searches")
def list_searches():
    return json_response({"searches": [as_json(d) for d in get_accounts().visible_searches(g.user)]})


@bp.post("/api/searches")
@require_role("editor")
def create_search():
    fields = _check()
    try:
        doc = get_accounts().add_search(fields, owner=g.user)
    except NameTaken:
        raise _name_taken(fields["name"]) from None
    response = json_response(as_json(doc), 201)
    response.headers["Location"] = url_for("saved.get_search", search_id=doc["_id"])
    return response


@bp.get("/api/searches/<search_id>")
def get_search(search_id: str):
    return json_response(as_json(_visible(search_id)))


@bp.put("/api/searches/<search_id>")
@require_role("editor")
def update_search(search_id: str):
    fields = _check(current=_changeable(search_id))
    try:
        doc = get_accounts().update_search(search_id, fields)
    except NameTaken:
        raise _name_taken(fields["name"]) from None
    if doc is None:  # deleted meanwhile
        abort(404, description="no saved search with this id")
    return json_response(as_json(doc))


@bp.delete("/api/searches/<search_id>")
@require_role("editor")
def delete_search(search_id: str):
    _changeable(search_id)
    get_accounts().delete_search(search_id)
    return "", 204


@bp.get("/searches/<search_id>")
def open_search(search_id: str):
    """A saved search's permalink: the search page with its filters, a window ending now."""
    doc = _visible(search_id)
    query = search_query(doc)
    return redirect(url_for("pages.search") + ("?" + query if query else ""))
