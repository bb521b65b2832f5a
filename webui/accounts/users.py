"""`opslog user add|passwd|role|remove|list -c FILE`: the team in MongoDB's `users`, without
editing the config.

Whoever can read the config file can reach the database, so these commands need no role of
their own: they are the admin's tools. A name of `webui.users` is refused by `add` (the config
user would shadow it at sign-in). A password comes from a prompt (asked twice) or, with
`--password-stdin` or when standard input is not a terminal, from its first line (for scripts).
A new user is a viewer unless `--role` says otherwise. The hash is made as
`opslog hash-password` makes it. `passwd` and `remove` end the user's sessions in every browser:
a session carries a digest of its user's hash, and a removed user has none.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import re
import sys
from collections.abc import Callable

from common.commands import Commands
from common.config import Config
from common.errors import StoreUnavailable
from common.passwords import hash_password
from common.roles import CONFIG_USER_ROLE, ROLES
from webui.accounts.store import AccountStore, NameTaken, open_accounts

log = logging.getLogger(__name__)
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")


def check_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise argparse.ArgumentTypeError(
            f"{name!r}: a user name is 1 to 64 letters, digits and . _ @ + - (starting with a letter or digit)")
    return name


def _password(args: argparse.Namespace) -> str:
    # Piped in (no terminal to prompt on), the first line is the password, as with --password-stdin.
    if args.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the passwords differ")
    if not password:
        raise ValueError("the password must not be empty")
    return password


def _with_store(config: Config, work: Callable[[AccountStore], int]) -> int:
    store = open_accounts(config.mongo, config.webui.query_timeout)
    try:
        return work(store)
    finally:
        store.close()


def cmd_user(config: Config, args: argparse.Namespace) -> int:
    try:
        return _with_store(config, lambda store: _ACTIONS[args.user_command](store, config, args))
    except (ValueError, StoreUnavailable) as exc:
        print(f"opslog user {args.user_command}: {exc}", file=sys.stderr)
        return 1


def _add(store: AccountStore, config: Config, args: argparse.Namespace) -> int:
    if args.name in config.webui.users:
        raise ValueError(f"{args.name!r} is a user of webui.users in the config; choose another name")
    password_hash = hash_password(_password(args))
    try:
        store.add_user(args.name, password_hash, args.role)
    except NameTaken:
        raise ValueError(f"user {args.name!r} exists already (opslog user passwd / role to change it)") from None
    log.info("user %s added with role %s", args.name, args.role)
    print(f"added user {args.name} ({args.role})")
    return 0


def _passwd(store: AccountStore, config: Config, args: argparse.Namespace) -> int:
    if store.user(args.name) is None:  # before asking for a password
        raise ValueError(_unknown(args.name, config))
    if not store.update_user(args.name, password_hash=hash_password(_password(args))):
        raise ValueError(_unknown(args.name, config))
    print(f"changed the password of {args.name}; their sessions have ended")
    return 0


def _role(store: AccountStore, config: Config, args: argparse.Namespace) -> int:
    if not store.update_user(args.name, role=args.role):
        raise ValueError(_unknown(args.name, config))
    print(f"{args.name} is now {args.role}")
    return 0


def _remove(store: AccountStore, config: Config, args: argparse.Namespace) -> int:
    if not store.remove_user(args.name):
        raise ValueError(_unknown(args.name, config))
    print(f"removed user {args.name}; their sessions have ended")
    return 0


def _list(store: AccountStore, config: Config, args: argparse.Namespace) -> int:
    web = config.webui
    for name in sorted(web.users):
        print(f"{name}\t{web.roles.get(name, CONFIG_USER_ROLE)}\tconfig")
    for doc in store.list_users():
        shadowed = " (shadowed by the config user)" if doc["_id"] in web.users else ""
        print(f"{doc['_id']}\t{doc['role']}\tdatabase{shadowed}")
    return 0


def _unknown(name: str, config: Config) -> str:
    if name in config.webui.users:
        return f"{name!r} is a user of webui.users: change it in the config file"
    return f"no user {name!r} in the database"


_ACTIONS = {"add": _add, "passwd": _passwd, "role": _role, "remove": _remove, "list": _list}


def register(commands: Commands) -> None:
    group = commands.group("user", "manage the web UI's users kept in MongoDB", dest="user_command",
                           description=__doc__)
    add = group.add("add", cmd_user, "add a user with a role (viewer, editor, admin)")
    add.add_argument("name", type=check_name)
    add.add_argument("--role", choices=ROLES, default="viewer", help="default: viewer (read only)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw = group.add("passwd", cmd_user, "set a user's password (ends their sessions)")
    pw.add_argument("name", type=check_name)
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    role = group.add("role", cmd_user, "change a user's role")
    role.add_argument("name", type=check_name)
    role.add_argument("role", choices=ROLES)
    rm = group.add("remove", cmd_user, "remove a user (ends their sessions)")
    rm.add_argument("name", type=check_name)
    group.add("list", cmd_user, "list the users: config and database, with their roles")
