"""Consumer workers: broker batches into MongoDB, exactly once in effect.

Builds on common/ alone; `consumer.store` is its only MongoDB edge. Its commands,
`opslog consume`, `opslog db init` and `opslog dead-letters`, live in
`consumer.cli` (the `opslog.commands` entry points).

The shape, one concern per module; imports point down this list (and to `common/`), never up:

- `consumer.consumer`: `Consumer`, the loop of one worker: take deliveries, gather
  a batch, store it, then ack; every batch ends OK, RETRY or ERROR.
- `consumer.suspects`: messages a worker may have died of, set aside and
  processed alone (the kill-loop rule, drawn in its docstring).
- `consumer.batch`: a batch in hand (`Pending`), a message's id, and the
  dead-letter message for records that can never be stored.
- `consumer.tally`: what a message's documents add to the counters (pure).
- `consumer.store`: the one package that talks to MongoDB (pymongo): inserts,
  counters, suspect attempts, indexes.
- `consumer.deadletters`: `opslog dead-letters list|replay`.
- `consumer.metrics`: the worker's Prometheus metrics.
- `consumer.cli`: the `consume`, `db init` and `dead-letters` commands.

From `common/`: the record wire format and its documents (`common.record`), the
broker (`common.amqp`), and the retry policy for both connections (`common.retry`).

Naming rule: an attribute that holds a config section is named after the
section, `<section>_cfg` (`Consumer.consumer_cfg` is `config.consumer`,
`Store.mongo_cfg` is `config.mongo`); `config` is only ever the whole `Config`.
"""
