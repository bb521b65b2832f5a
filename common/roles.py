"""The web UI's roles, lowest first: what each may do is every lower role's rights and more.

  viewer   reads: search, histogram, export, tail, hosts, saved searches shared with everyone
  editor   + saved searches and alert rules (its own; shared ones it owns)
  admin    + users, and every saved search and rule

Here, not in webui, because the config loader checks the role names in `webui.roles`
and `webui.api_tokens` offline (`opslog check-config`).
"""

from __future__ import annotations

from typing import Any

ROLES = ("viewer", "editor", "admin")
CONFIG_USER_ROLE = "admin"      # config users are the operators who own the file
PLAIN_TOKEN_ROLE = "viewer"     # a bare string in webui.api_tokens: it could only ever read
PROXY_DEFAULT_ROLE = "viewer"   # webui.proxy_default_role: like Grafana's auth proxy
TRIAL_ROLE = "admin"            # auth: none is a local trial: everything is allowed


def allows(role: str | None, needed: str) -> bool:
    """True when `role` is `needed` or above it; no role allows nothing."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


def check_role(value: Any) -> str:
    """`value` as a role name, or ValueError listing the roles."""
    if value not in ROLES:
        raise ValueError(f"must be one of {', '.join(ROLES)}, got {value!r}")
    return value
