"""What coverage needs from records: each v2 group's file identity and byte lengths on the wire
and in the documents, the ranges merged from them, and heartbeats read back."""

from __future__ import annotations

import orjson
import pytest

from common import coverage
from common.errors import PoisonMessage
from common.record import BatchBuilder, decode_batch, decode_documents, heartbeats, row, to_document, to_entry
from consumer.store.coverage import batch_coverage


def body(lengths=None, file="f1", records=3):
    builder = BatchBuilder()
    rows, lens = builder.file_group("web-01", "api", "/var/log/api.log", 1795660000.0, file)
    for i in range(records):
        rows.append(row(f"id-{i}", i * 10, None, f"line {i}", None, None, None))
        lens.append(10)
    payload = orjson.loads(builder.encode())
    if lengths is not None:
        payload["groups"][0]["lengths"] = lengths
    return orjson.dumps(payload)


def test_documents_carry_the_file_identity_and_each_records_length():
    docs, rejected = decode_documents(body())
    assert not rejected
    assert [(d["file"], d["offset"], d["len"]) for d in docs] == [("f1", 0, 10), ("f1", 10, 10), ("f1", 20, 10)]


@pytest.mark.parametrize("lengths", [[10, 10], "x", [10, "ten", 10], [10, -1, 10]])
def test_bad_lengths_cost_the_records_their_coverage_never_their_storage(lengths):
    docs, rejected = decode_documents(body(lengths))
    assert not rejected and len(docs) == 3
    assert all(("file" in d) == ("len" in d) for d in docs)
    if not isinstance(lengths, list) or len(lengths) != 3:
        assert not any("file" in d for d in docs)


def test_the_v1_form_keeps_file_and_length_for_dead_letters_and_replays():
    entries = decode_batch(body())
    assert (entries[1]["file"], entries[1]["len"]) == ("f1", 10)
    doc = to_document(entries[1])
    assert (doc["file"], doc["len"]) == ("f1", 10)
    assert to_entry(doc)["len"] == 10


def test_a_batchs_ranges_merge_per_file_whatever_their_order():
    docs, _ = decode_documents(body(records=6))
    shuffled = [docs[3], docs[4], docs[0], docs[1], docs[5]]  # docs[2] is missing
    [acc] = batch_coverage(shuffled).values()
    assert [r[:2] for r in acc.closed()] == [[0, 20], [30, 60]]


def test_ranges_merge_touching_and_overlapping_and_containment_is_checked():
    merged = coverage.merge([[30, 40, 5, 5], [0, 10, 1, 1], [10, 20, 2, 2], [15, 25, 9, 0]])
    assert merged == [[0, 25, 9, 0], [30, 40, 5, 5]]
    assert coverage.gaps(merged) == [[25, 30]]
    assert coverage.contains(merged, [[0, 5], [31, 40]]) and not coverage.contains(merged, [[20, 31]])
    assert coverage.from_records([(0, 10), (10, 5), (20, 5), (22, 1)]) == [[0, 15], [20, 25]]


def test_a_heartbeat_is_read_back_per_file_and_a_broken_one_is_refused():
    raw = heartbeats.encode("web-01", 1795660000.0, 5.0, [
        {"file": "f1", "source": "/a.log", "names": ["/a.log.1"], "size": 100, "confirmed": 90, "inode": "1:2",
         "fingerprint": "ab", "mtime": 1795660000.0, "state": "reading"},
        {"file": "f2", "source": "/b.log", "size": "big", "confirmed": 0}])
    [doc] = heartbeats.to_documents(raw)
    assert (doc["_id"], doc["size"], doc["confirmed"], doc["names"]) == ("web-01\0f1", 100, 90, ["/a.log.1", "/a.log"])
    with pytest.raises(PoisonMessage):
        heartbeats.to_documents(b'{"v": 1, "records": []}')


JOURNAL = coverage.journal_identity("0e062bd169124f9cb4cdb00db5109f71", "journal:system")


def journal_body(seqnums_spans: list[tuple[int, int]]) -> bytes:
    builder = BatchBuilder()
    rows, spans = builder.file_group("web-01", "sshd", "journal:ssh.service", 1795660000.0, JOURNAL)
    for seqnum, span in seqnums_spans:
        rows.append(row(f"id-{seqnum}", seqnum, None, f"entry {seqnum}", None, None, None))
        spans.append(span)
    return builder.encode()


def test_a_journal_input_covers_seqnums_and_what_its_filters_passed_over_is_no_gap():
    # seqnums 5..7 were read (5 closes 3..5 after a cursor at 2), 9 and 20 after entries of other units
    docs, _ = decode_documents(journal_body([(5, 3), (6, 1), (7, 1), (9, 2), (20, 11)]))
    [acc] = batch_coverage(docs).values()
    assert [r[:2] for r in acc.closed()] == [[3, 21]], "one range: seqnums 3..20"
    missing = [d for d in docs if d["offset"] != 9]  # a stored record deleted since, or never stored
    [acc] = batch_coverage(missing).values()
    assert [r[:2] for r in acc.closed()] == [[3, 8], [10, 21]], "the gap is the seqnums entry 9 closed"


def test_a_gap_the_journal_no_longer_held_is_vacuumed_and_others_keep_their_cause():
    gaps = [[11, 16, "missing"], [30, 31, "deleted"]]
    assert coverage.vacuumed(gaps, [[11, 16]]) == [[11, 16, "vacuumed"], [30, 31, "deleted"]]
    raw = heartbeats.encode("web-01", 1795660000.0, 5.0, [
        {"file": JOURNAL, "source": "journal:system", "names": ["journal:system"], "size": 21, "confirmed": 21,
         "inode": None, "fingerprint": None, "mtime": None, "state": "reading",
         "skipped": [[11, 16], "bad", [1, 2, 3]]}])
    [doc] = heartbeats.to_documents(raw)
    assert doc["skipped"] == [[11, 16]] and doc["inode"] is None and doc["size"] == 21
