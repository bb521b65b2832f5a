"""Schemathesis fuzzes every operation of /api/openapi.json against a real `opslog web`.

One `opslog web` process (waitress) over a seeded database of the module's own, with an API
token, serves every operation's test. Each operation gets a bounded number of generated
requests (FUZZ_EXAMPLES, with schemathesis' coverage, examples and fuzzing phases and its
positive and negative modes; the module takes about 25 s here); what must hold for every one:
no 5xx, a status and body the document describes, and every 4xx carries `{"error", "param"}`.
Until the query side of issue 12 is merged, the requests it fixes are left out (`known_elsewhere`).
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pymongo
import pytest
import schemathesis
import yaml
from helpers import run_opslog, stop, wait_until
from hypothesis import HealthCheck, assume, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from webui_data import file_lines, make_doc, seed_docs
from werkzeug.datastructures import MultiDict

from common.config import MongoConfig
from common.localservices import free_port
from consumer.store import Store as ConsumerStore
from webui.openapi import document as openapi_document
from webui.params import ParamError, parse_filters

FUZZ_EXAMPLES = 25
LONG_WINDOW = timedelta(days=92)
pytestmark = pytest.mark.slow


def error_body(ctx, response, case) -> bool | None:
    """Every 4xx answer of the API carries the `{"error", "param"}` body."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body, dict) and {"error", "param"} <= set(body), \
            f"{response.status_code} without error and param: {response.text[:300]!r}"
    return None


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, ignored_auth, error_body]


@pytest.fixture(scope="module")
def web(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, bool]]:
    """(base URL, API token, `query_side_fixed`) of an `opslog web` over a few hosts' records of the last hour."""
    database, token = f"opslog_fuzz_{uuid.uuid4().hex[:10]}", secrets.token_urlsafe(16)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    with pymongo.MongoClient(mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000) as client:
        store = ConsumerStore(MongoConfig(uri=f"{mongo_uri.rstrip('/')}/{database}"))
        store.init()
        seed_docs(store, file_lines([f"GET /item/{i} 200" for i in range(30)], now - timedelta(minutes=30),
                                 step=timedelta(seconds=50), fields={"status": 200, "path": {"n": 1}}) +
                  [make_doc(now, "=cmd|' /C calc'!A0", host="db-01", level=None, parse_error="no match"),
                   make_doc(now, "boom", host="db-01", app="worker", level="critical", offset=7)])
        store.close()
        port = free_port()
        config = tmp_path_factory.mktemp("fuzz") / "web.yaml"
        config.write_text(yaml.safe_dump({
            "mongo": {"uri": f"{mongo_uri.rstrip('/')}/{database}"},
            "webui": {"listen": f"127.0.0.1:{port}", "auth": "password", "api_tokens": [token],
                      "secret_key": secrets.token_hex(16), "threads": 8, "request_timeout": "10s"},
            "log_level": "warning"}))
        process = run_opslog("web", config=config)
        try:
            wait_until(lambda: process.poll() is None and _answers(port), timeout=30,
                       message="opslog web answering")
            base = f"http://127.0.0.1:{port}"
            yield base, token, query_side_fixed(base, token)
        finally:
            exit_code = stop(process)
            client.drop_database(database)
        assert exit_code == 0, process.output()[-3000:]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def query_side_fixed(base: str, token: str) -> bool:
    """Whether this build answers unrepresentable times and over-long windows with a quick 400.

    That is the query side of issue 12 section 5 (webui/params.py, webui/queries/), built on
    another branch. Without it, such requests get a 500 or run for minutes, so the fuzzer leaves
    them out (see `known_elsewhere`); once merged, this probe is true and nothing is left out."""
    for query in ("since=0001-01-01T00:00:00%2B14:00", "since=400d"):
        request = urllib.request.Request(f"{base}/api/logs?{query}", headers={"Authorization": f"Bearer {token}"})
        try:
            urllib.request.urlopen(request, timeout=5).close()
            return False  # a 200: the window was not refused
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code != 400:
                return False
        except OSError:
            return False  # no answer in time
    return True


def known_elsewhere(case) -> bool:
    """A request the query-side branch fixes: a time that cannot be represented (500 today) or a
    window longer than LONG_WINDOW (seconds to minutes of database work today)."""
    args = MultiDict()
    for key, value in (case.query or {}).items():  # as the server will see them: strings
        for one in value if isinstance(value, list) else [value]:
            if one is not None:
                args.add(key, str(one))
    try:
        flt = parse_filters(args, 3600)
    except ParamError:
        return False  # a clean 400, as it should be
    except Exception:  # noqa: BLE001 - OverflowError and friends: the 500 the other branch turns into a 400
        return True
    return flt.until - flt.since > LONG_WINDOW


# The packaged document (what /api/openapi.json serves, see test_openapi.py), loaded at collection
# time so that each operation is a test of its own; the requests go to the real server.
schema = schemathesis.openapi.from_dict(openapi_document())


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error_or_an_undocumented_answer(case, web):
    base, token, fixed = web
    assume(fixed or not known_elsewhere(case))
    case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, timeout=30)
