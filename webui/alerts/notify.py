"""Delivery of one notice to one notifier: a webhook (JSON, or a Slack-compatible body) or an email.

Every delivery ends in one of two outcomes, `delivered` or `failed`, with its attempts: a
transient failure (no connection, a timeout, HTTP 5xx or 429, an SMTP 4xx or a dropped
connection) is retried with capped exponential backoff (`common.retry`, tenacity) up to the
notifier's `attempts`; a permanent one (HTTP 4xx, SMTP 5xx, bad credentials) is not.

Each notice carries an `id` (`notification_id` in the JSON, `X-Opslog-Notification-Id` on the
request, `Message-ID` of the email), the same on every attempt and after a takeover, so a
receiver can drop the one duplicate a crash between its answer and our record can cause.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import orjson
from markupsafe import escape

from common.config import NotifierConfig
from common.retry import GAVE_UP, Backoff, retry

log = logging.getLogger(__name__)
BACKOFF = Backoff(initial=0.5, maximum=30.0, jitter=0.2)


class Transient(Exception):
    """Worth another attempt."""


class Permanent(Exception):
    """Another attempt would fail the same way."""


@dataclass
class Outcome:
    outcome: str                    # delivered | failed
    attempts: int
    status: int | None = None       # HTTP status or SMTP code of the last attempt
    error: str | None = None
    seconds: float = 0.0


def deliver(notifier: NotifierConfig, payload: dict[str, Any], notice_id: str,
            sleep: Callable[[float], object] = time.sleep, backoff: Backoff = BACKOFF) -> Outcome:
    """Send `payload` through `notifier`, retrying transient failures; never raises."""
    attempts: list[int] = [0]
    last: list[Any] = [None]

    def once() -> int | None:
        attempts[0] += 1
        try:
            status = _webhook(notifier, payload, notice_id) if notifier.type == "webhook" \
                else _email(notifier, payload, notice_id)
        except Transient as exc:
            last[0] = exc
            raise
        last[0] = None
        return status

    started = time.monotonic()
    try:
        result = retry(once, on=Transient, what=f"notifier {notifier.name}", backoff=backoff,
                       give_up=lambda: attempts[0] >= notifier.attempts, sleep=sleep)
    except Permanent as exc:
        return Outcome("failed", attempts[0], getattr(exc, "status", None), str(exc), time.monotonic() - started)
    seconds = time.monotonic() - started
    if result is GAVE_UP:
        exc = last[0]
        return Outcome("failed", attempts[0], getattr(exc, "status", None), str(exc), seconds)
    return Outcome("delivered", attempts[0], result, None, seconds)


# webhook -------------------------------------------------------------------------------------

def webhook_body(notifier: NotifierConfig, payload: dict[str, Any]) -> dict[str, Any]:
    if notifier.format == "slack":
        return slack_body(payload)
    return {k: v for k, v in payload.items() if k != "lines"} | {"lines": payload.get("lines", [])[:5]}


def _webhook(notifier: NotifierConfig, payload: dict[str, Any], notice_id: str) -> int:
    body = orjson.dumps(webhook_body(notifier, payload))
    request = urllib.request.Request(notifier.url or "", data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "opslog-alert", "X-Opslog-Notification-Id": notice_id,
        **notifier.headers})
    try:
        with urllib.request.urlopen(request, timeout=notifier.timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        error = _http_error(exc)
        if exc.code >= 500 or exc.code in (408, 429):
            raise error_of(Transient, error, exc.code) from None
        raise error_of(Permanent, error, exc.code) from None
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out, DNS
        raise Transient(f"{notifier.url}: {getattr(exc, 'reason', exc)}") from None


def _http_error(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(300).decode("utf-8", "replace")
    except OSError:
        text = ""
    return f"HTTP {exc.code}" + (f": {text}" if text else "")


def error_of(kind: type[Exception], text: str, status: int | None) -> Exception:
    exc = kind(text)
    exc.status = status  # type: ignore[attr-defined]
    return exc


def summary(payload: dict[str, Any]) -> str:
    value = payload.get("value")
    shown = "no value" if value is None else f"{value:g}"
    if payload["kind"] == "silence":
        what = f"{shown} records in the last {payload['for']}"
    else:
        what = f"{shown} {payload['comparison']} {payload['threshold']:g} over {payload['window']}"
    return f"[{payload['state'].upper()}] {payload['rule']}: {what}"


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    firing = payload["state"] == "firing"
    fields = [{"title": "value", "value": str(payload.get("value")), "short": True},
              {"title": "threshold", "value": str(payload.get("threshold")), "short": True},
              {"title": "query", "value": payload.get("query") or "", "short": False},
              {"title": "started", "value": payload.get("started_at") or "", "short": True}]
    return {"text": f"{summary(payload)} <{payload['url']}|search>",
            "attachments": [{"color": "#d00000" if firing else "#2eb886", "title": payload["rule"],
                             "title_link": payload["url"], "fields": fields,
                             "footer": f"opslog · {payload['fingerprint']}"}]}


# email ----------------------------------------------------------------------------------------

def email_message(notifier: NotifierConfig, payload: dict[str, Any], notice_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = summary(payload)
    msg["From"] = notifier.sender
    msg["To"] = ", ".join(notifier.to)
    msg["Message-ID"] = make_msgid(idstring=notice_id.replace("@", "-"), domain="opslog")
    msg["X-Opslog-Notification-Id"] = notice_id
    lines = payload.get("lines") or []
    facts = [("state", payload["state"]), ("value", payload.get("value")), ("threshold", payload.get("threshold")),
             ("window", payload.get("window")), ("query", payload.get("query")),
             ("started at", payload.get("started_at")), ("ended at", payload.get("ended_at")),
             ("fingerprint", payload["fingerprint"])]
    text = [summary(payload), "", *(f"{k}: {v}" for k, v in facts if v is not None), "", f"search: {payload['url']}"]
    if lines:
        text += ["", "Top matching lines:"] + [f"  {ln['ts']} {ln['host']} {ln['app']} {ln['message']}" for ln in lines]
    msg.set_content("\n".join(text) + "\n")
    rows = "".join(f"<tr><th align=left>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts
                   if v is not None)
    html = [f"<h2>{escape(summary(payload))}</h2><table>{rows}</table>",
            f'<p><a href="{escape(payload["url"])}">Open the search</a></p>']
    if lines:
        items = "".join(f"<li><code>{escape(ln['ts'])} {escape(ln['host'] or '')} {escape(ln['app'] or '')} "
                        f"{escape(ln['message'])}</code></li>" for ln in lines)
        html.append(f"<h3>Top matching lines</h3><ol>{items}</ol>")
    msg.add_alternative("<html><body>" + "".join(html) + "</body></html>", subtype="html")
    return msg


def _email(notifier: NotifierConfig, payload: dict[str, Any], notice_id: str) -> int:
    smtp = notifier.smtp
    assert smtp is not None
    msg = email_message(notifier, payload, notice_id)
    context = ssl.create_default_context(cafile=smtp.ca_file)
    try:
        if smtp.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            client.ehlo()
            if smtp.starttls:
                client.starttls(context=context)
                client.ehlo()
            if smtp.user and smtp.password:
                client.login(smtp.user, smtp.password)
            client.send_message(msg)
        return 250
    except smtplib.SMTPAuthenticationError as exc:
        raise error_of(Permanent, f"SMTP authentication failed: {exc.smtp_code} {exc.smtp_error!r}",
                       exc.smtp_code) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise error_of(Permanent, f"recipients refused: {exc.recipients}", None) from None
    except smtplib.SMTPResponseException as exc:
        kind = Transient if 400 <= exc.smtp_code < 500 else Permanent
        raise error_of(kind, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}", exc.smtp_code) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise error_of(Permanent, f"SMTP server: {exc}", None) from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        if isinstance(exc, ssl.SSLCertVerificationError):
            raise error_of(Permanent, f"SMTP TLS: {exc}", None) from None
        raise Transient(f"SMTP {smtp.host}:{smtp.port}: {exc}") from None
