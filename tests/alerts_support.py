"""What the alert tests receive notifications with: an HTTP receiver and a real SMTP server (aiosmtpd)
with STARTTLS and authentication, and the pipeline of real processes the rules watch."""

from __future__ import annotations

import email
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from common.localservices import free_port

SMTP_USER, SMTP_PASSWORD = "opslog", "smtp-secret-for-tests"


@dataclass
class Received:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


class Receiver:
    """A webhook endpoint: answers `fail_first` requests with 500, then 200; keeps every request."""

    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    status = 500 if len(receiver.requests) < receiver.fail_first else 200
                    receiver.requests.append(Received(status, body, dict(self.headers)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def accepted(self, rule: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.requests if r.status == 200 and (rule is None or r.body["rule"] == rule)
                    and (state is None or r.body["state"] == state)]


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, over TLS)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's naming)
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def __call__(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER \
            and auth_data.password.decode() == SMTP_PASSWORD
        self.logins.append((auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?",
                            session.ssl is not None))
        return AuthResult(success=ok)

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key (openssl), for the SMTP server's STARTTLS."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class SmtpServer:
    """aiosmtpd on 127.0.0.1 that requires STARTTLS before AUTH, and AUTH before mail."""

    def __init__(self, directory: Path):
        import ssl
        self.cert, key = self_signed(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, tls_context=context,
                                     require_starttls=True, authenticator=self.mailbox, auth_required=True,
                                     auth_require_tls=True)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def notifier(self) -> dict[str, Any]:
        return {"type": "email", "to": ["oncall@example.com"], "from": "opslog@example.com",
                "smtp": {"host": "127.0.0.1", "port": self.port, "starttls": True, "user": SMTP_USER,
                         "password": SMTP_PASSWORD, "ca_file": str(self.cert)}}


def write_errors(path: Path, count: int, tag: str = "payment failed") -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for i in range(count):
            fh.write(f"ERROR {tag} {i} at {time.time():.3f}\n")


class Trickle:
    """Appends an info line to `path` every `interval` seconds until stopped (a live host)."""

    def __init__(self, path: Path, interval: float = 0.25):
        self.path, self.interval = path, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop_event.wait(self.interval):
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(f"INFO heartbeat line {n}\n")
            n += 1

    def __enter__(self) -> Trickle:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join()
