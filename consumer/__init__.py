"""Consumer workers: broker batches into MongoDB, exactly once in effect.

Builds on common/ alone; `consumer.store` is its only MongoDB edge. Its commands,
`opslog consume`, `opslog db init` and `opslog dead-letters`, live in
`consumer.cli` (the `opslog.commands` entry points).
"""
