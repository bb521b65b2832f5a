"""Pieces every opslog service shares: record schema, config, logging, errors.

common/ sits below shipper/, consumer/ and webui/ and imports none of them
(`make lint` checks it): `amqp` is the one pika edge, `passwords` the hashes of
`webui.users`, `cli` the `opslog` main with the general commands (`check-config`,
`up`) and `commands` what the packages' own `cli.py` use to add theirs through
the `opslog.commands` entry points. `localservices` launches private RabbitMQ and
database servers for `opslog up`, the tests and the bench.
"""
