"""The shipper: tail files and the journal, parse lines into records, publish confirmed batches.

Builds on common/ alone. Its commands, `opslog ship` and `opslog import` (the
back-fill), live in `shipper.cli` (the `opslog.commands` entry points).

How it is put together (each module one concern; data flows down the list):

- `shipper.shipper`: the loop. It orders the steps (scan, read, batch, submit,
  apply confirms, recover, reload) and owns the batch being filled; nothing else.
- `shipper.files`: which files are tailed (`Files`, `Tracked`), from which
  offset each starts, what a check finds (truncated, rotated, deleted, idle),
  confirming a file's offset into the registry, taking reloaded inputs.
- `shipper.tailer`: one file read by identity (`TailedFile`). It owns the
  file's offsets: `confirmed` moves only through `resume`, `confirm` (after
  the broker confirmed) and `restart` (truncated).
- `shipper.discovery` (globs, symlinks, `exclude`) and `shipper.watcher`
  (inotify or polling: when to scan).
- `shipper.registry`: the confirmed offsets on disk, written atomically.
- `shipper.lines`: `Line` (what the tailer reads) and `Frame` (container framing): a leaf.
- `shipper.container`, `shipper.multiline`: joining lines into events.
- `shipper.parsers` and the modules it names (`parsed`, `times`,
  `parse_syslog`, `parse_access`, `logfmt`): a line's text in, `Parsed` out.
- `shipper.records`: a line in, its record row out; the one record maker,
  shared with the importer so both give a line the same id.
- `shipper.journals`, `shipper.journal`, `shipper.journal_entry`: `type: journald`
  inputs. `Journals` holds each input's confirmed cursor (into the registry, on
  confirm); `JournalReader` runs journalctl on a thread of its own into a bounded
  buffer; `entry_maker` turns an entry into its record row.
- `shipper.sender`: publishing batches with confirms on lanes of their own.
- `shipper.reload`: SIGHUP, the config re-read; `Files` and `Sender` then
  reconfigure themselves.
- `shipper.backfill` (`opslog import`), with `import_plan` and `progress`.
- `shipper.metrics`: the Prometheus endpoint.
- `shipper.cli`: the `ship` and `import` commands.
"""
