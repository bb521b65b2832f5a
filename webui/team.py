"""Who am I, and who is here: `GET /api/me` (any user) and `GET /api/users` (admin).

Users are managed with `opslog user add|passwd|role|remove -c FILE` (`webui.accounts.users`),
by whoever holds the config file; the API only shows them.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g

from common.roles import CONFIG_USER_ROLE
from webui.accounts import get_accounts
from webui.auth import current_role, require_role
from webui.formats import json_ready, json_response

bp = Blueprint("team", __name__, url_prefix="/api")


@bp.get("/me")
def me():
    return json_response({"user": g.user, "role": current_role(), "via": g.auth_via})


@bp.get("/users")
@require_role("admin")
def users():
    web = current_app.config["OPSLOG"].webui
    listed = [{"name": name, "role": web.roles.get(name, CONFIG_USER_ROLE), "source": "config",
               "created": None, "updated": None} for name in sorted(web.users)]
    for doc in get_accounts().list_users():
        if doc["_id"] not in web.users:  # shadowed by the config user of that name at sign-in
            listed.append({"name": doc["_id"], "role": doc["role"], "source": "database",
                           "created": doc.get("created"), "updated": doc.get("updated")})
    return json_response(json_ready({"users": listed}))
