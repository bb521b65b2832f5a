"""The web UI's commands: `opslog web`, `opslog hash-password` (for `webui.users`) and
`opslog user add|passwd|role|remove|list` (users in MongoDB, `webui.accounts.users`)."""

from __future__ import annotations

import argparse
import getpass

from common.commands import Commands
from common.config import Config


def cmd_web(config: Config, args: argparse.Namespace) -> int:
    from webui.server import serve
    serve(config)
    return 0


def cmd_hash_password(_config: None, args: argparse.Namespace) -> int:
    from common.passwords import hash_password
    password = args.password or getpass.getpass("password: ")
    print(hash_password(password))
    return 0


def register(commands: Commands) -> None:
    from webui.accounts.users import register as register_user
    register_user(commands)
    commands.add("web", cmd_web, "serve the web UI and JSON API")
    hp = commands.add("hash-password", cmd_hash_password, "print a password hash for webui.users", config="none")
    hp.add_argument("--password", help="the password (default: prompt)")
