"""The journald inputs of a shipper: their readers, and their confirmed cursors.

A journal input's position is the cursor of the last entry the broker
confirmed, as a file's is its confirmed offset: `confirm` (called by the
shipper's `_apply_confirmed` for the batches handed back, in the order they
were submitted) is the one place it moves, and the registry with it. When the
sender fails, `rewind` restarts each journalctl after its confirmed cursor; the
record ids are deterministic, so an entry published twice is stored once.

Where a journal input starts: its confirmed cursor (saved in the registry);
otherwise, on the very first start with `start_at: end`, the journal's last
entry then; otherwise the oldest entry in the journal.

Inputs are keyed by the journal they read: `journal:<directory>` or
`journal:system`, plus `#n` for the n-th other input reading the same journal.
Changing an input's filters keeps its position.
"""

from __future__ import annotations

import logging
from typing import Any

from common.config import InputConfig, ShipperConfig
from common.coverage import journal_identity
from shipper.journal import JournalReader
from shipper.journal_entry import Cursor, Entry
from shipper.metrics import ShipperMetrics
from shipper.registry import Registry

log = logging.getLogger(__name__)


class JournalInput:
    """One journald input: its key, its reader and what the broker confirmed of it."""

    def __init__(self, key: str, input_config: InputConfig, reader: JournalReader, confirmed: str | None):
        self.key, self.input_config, self.reader, self.confirmed = key, input_config, reader, confirmed

    def take(self, limit: int) -> list[Entry]:
        return self.reader.take(limit)


def journal_keys(inputs: tuple[InputConfig, ...]) -> list[tuple[str, InputConfig]]:
    """(registry key, input) for each journald input, in config order."""
    keyed, seen = [], {}
    for cfg in inputs:
        if cfg.type != "journald":
            continue
        assert cfg.journald is not None
        base = f"journal:{cfg.journald.directory or 'system'}"
        n = seen[base] = seen.get(base, -1) + 1
        keyed.append((base if n == 0 else f"{base}#{n}", cfg))
    return keyed


class Journals:
    def __init__(self, shipper_config: ShipperConfig, registry: Registry, metrics: ShipperMetrics):
        self.shipper_config = shipper_config
        self.registry = registry
        self.metrics = metrics
        self.inputs: list[JournalInput] = []
        self._first_start = False

    def start(self, first_start: bool) -> None:
        self._first_start = first_start
        keyed = journal_keys(self.shipper_config.inputs)
        self.registry.prune_journals(key for key, _ in keyed)
        self.inputs = [self._open(key, cfg) for key, cfg in keyed]
        self._first_start = False  # an input added by a reload is not read from the end

    def _open(self, key: str, cfg: InputConfig) -> JournalInput:
        cursor = self.registry.journal_cursor(key)
        at_end = self._first_start and cfg.start_at == "end"
        reader = JournalReader(key, self.shipper_config.host, cfg, cursor, at_end,
                               self.metrics.journal_skipped.inc, self.metrics.journal_oversized.inc)
        why = "its confirmed cursor" if cursor else "the journal's end (start_at: end)" if at_end else \
            "the journal's oldest entry"
        log.info("reading %s (%s) from %s", key, " ".join(_filters(cfg)) or "every entry", why)
        return JournalInput(key, cfg, reader.start(), cursor)

    def owns(self, owner: object) -> bool:
        return isinstance(owner, JournalInput)

    def anchor(self) -> None:
        """Confirm the start of a `start_at: end` input as soon as its reader found it, so a
        restart before its first entry starts there too, not at the journal's oldest entry."""
        for journal in self.inputs:
            if journal.confirmed is None and journal.reader.anchor is not None:
                journal.confirmed = journal.reader.anchor
                self.registry.confirm_journal(journal.key, journal.confirmed, -1)

    def confirm(self, journal: JournalInput, seqnum: int, cursor: str) -> None:
        """The broker confirmed `journal`'s entries up to `cursor`. Nothing moves for an input
        replaced since (a reload)."""
        if journal in self.inputs:
            journal.confirmed = cursor
            self.registry.confirm_journal(journal.key, cursor, seqnum)

    def heartbeat_entries(self) -> list[dict[str, Any]]:
        """Each input's heartbeat entry (common.record.heartbeats), in seqnums: how far it read,
        what the broker confirmed, what it skipped. An input that read nothing and has no cursor
        has none yet."""
        out = []
        for journal in self.inputs:
            last, skipped = journal.reader.progress()
            confirmed = Cursor.parse(journal.confirmed) if journal.confirmed else None
            held = journal_identity(confirmed.seqnum_id, journal.key) if confirmed is not None else None
            if last is not None:
                identity, size = last.file, last.seqnum + 1
            elif confirmed is not None and held is not None:
                identity, size = held, confirmed.seqnum + 1
            else:
                continue
            done = confirmed.seqnum + 1 if confirmed is not None and held == identity else 0
            out.append({"file": identity, "source": journal.key, "names": [journal.key], "size": size,
                        "confirmed": min(done, size), "inode": None, "fingerprint": None, "mtime": None,
                        "state": "reading",
                        "skipped": [[start, end] for file, start, end in skipped if file == identity]})
        return out

    def rewind(self) -> None:
        """Forget what was read and not confirmed: each journal is read again after its cursor."""
        for journal in self.inputs:
            journal.reader.rewind(journal.confirmed)

    def reconfigure(self, shipper_config: ShipperConfig) -> None:
        """Take reloaded inputs (SIGHUP; the shipper drained its batches first): an input whose
        settings changed is read again after its confirmed cursor with the new ones."""
        kept = {(j.key, j.input_config): j for j in self.inputs}
        wanted = journal_keys(shipper_config.inputs)
        self.registry.prune_journals(key for key, _ in wanted)
        self.shipper_config = shipper_config
        for journal in self.inputs:
            if (journal.key, journal.input_config) not in dict.fromkeys(wanted):
                journal.reader.close()
        self.inputs = [kept.get((key, cfg)) or self._open(key, cfg) for key, cfg in wanted]

    def close(self) -> None:
        for journal in self.inputs:
            journal.reader.close()


def _filters(cfg: InputConfig) -> list[str]:
    jc = cfg.journald
    assert jc is not None
    return [*(f"unit={u}" for u in jc.units), *(f"identifier={i}" for i in jc.identifiers),
            *([f"priority<={jc.priority}"] if jc.priority is not None else []), *jc.matches]
