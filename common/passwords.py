"""Password hashes for `webui.users`: made by `opslog hash-password` and by `opslog up`
for its first-look admin, checked by the web UI's sign-in (`webui.auth`)."""

from __future__ import annotations

from werkzeug.security import generate_password_hash


def hash_password(password: str) -> str:
    """A werkzeug password hash for `webui.users` (what `opslog hash-password` prints)."""
    if not password:
        raise ValueError("the password must not be empty")
    return generate_password_hash(password)
