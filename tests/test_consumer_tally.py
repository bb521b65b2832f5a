"""What a message adds to the counters, computed without the database."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from common.record import to_document
from consumer.tally import rollup_id, tally
from tests.consumer_support import START, make_records


def at(seconds: float) -> datetime:
    """A document time: naive, in UTC."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def test_records_are_counted_per_minute_host_app_and_level():
    docs = [to_document(r.to_wire()) for r in make_records("web-01", 6000)]  # two minutes of log time
    counts = tally(docs)
    assert sum(c.n for c in counts.minutes) == 6000
    for c in counts.minutes:
        assert c.minute.second == 0 and c.minute.microsecond == 0
        assert c.key == f"{int(c.minute.timestamp())}|web-01|web|{c.level or '-'}"
        assert c.n == sum(1 for d in docs if d["ts"].replace(second=0, microsecond=0, tzinfo=UTC) == c.minute
                          and d.get("level") == c.level)
    assert {c.minute for c in counts.minutes} == {datetime.fromtimestamp(START // 60 * 60 + 60 * i, UTC)
                                                  for i in range(3)}


def test_each_host_gets_its_records_errors_first_and_last_seen_and_last_error():
    one, two = make_records("web-01", 30), make_records("web-02", 10, first=100)
    docs = [to_document(r.to_wire()) for r in one + two]
    hosts = {h.host: h for h in tally(docs).hosts}
    assert hosts["web-01"].records == 30 and hosts["web-02"].records == 10
    errors = [r for r in one if r.level in ("error", "critical")]
    assert hosts["web-01"].errors == len(errors)
    assert hosts["web-01"].last_error == at(max(r.received_at for r in errors))
    assert hosts["web-01"].first_seen == at(one[0].received_at)
    assert hosts["web-02"].last_seen == at(two[-1].received_at)
    assert hosts["web-01"].apps == {"web"} and hosts["web-01"].sources == {"/var/log/app.log"}


def test_a_message_without_documents_counts_nothing():
    assert tally([]).minutes == [] and tally([]).hosts == []


def test_rollup_ids_tell_bars_in_names_apart_and_keep_the_older_form_otherwise():
    """The older form, for names without `|`, is what rollups written before hold: the same id
    keeps an upgrade from splitting a minute's count or counting a redelivered message twice."""
    assert rollup_id(1795650000, "web-01", "nginx", None) == "1795650000|web-01|nginx|-"
    assert rollup_id(1795650000, "web-01", "nginx", "error") == "1795650000|web-01|nginx|error"
    assert rollup_id(60, "web", "x|y", "info") != rollup_id(60, "web|x", "y", "info")
    assert orjson.loads(rollup_id(60, "web", "x|y", None)) == [60, "web", "x|y", "-"]
