"""The shipper: tail files, parse lines into records, publish confirmed batches.

Builds on common/ alone. Its commands, `opslog ship` and `opslog import` (the
back-fill), live in `shipper.cli` (the `opslog.commands` entry points).
"""
