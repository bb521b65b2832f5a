"""Local RabbitMQ and MongoDB-compatible servers for `opslog up`, the tests and the bench:
launchers of private servers on this machine, never used by shipper, consumer or web UI.

Both run as ordinary child processes under a directory we own, on ports we pick,
so several can run side by side on one machine without root and without
touching a system-wide broker or database.

    ports             free_port(), and whether something listens on a port
    processes         process table, trees and groups; stopping them; console logs
    readiness         waiting for a starting service: no deadline while it works, a stall limit
    epmd              our own Erlang port mapper, in the foreground on a private port
    rabbitmq          RabbitMQNode: one private node
    rabbitmq_cluster  RabbitMQCluster: several nodes joined on one machine
    mongo             MongoServer: SecantusDB, the MongoDB wire protocol
    mongo_ping        its readiness probe: one `ping` over a socket, no database driver
    errors            ServiceError, ServiceNotInstalled
"""

from common.localservices.errors import ServiceError, ServiceNotInstalled
from common.localservices.mongo import MongoServer
from common.localservices.ports import free_port
from common.localservices.rabbitmq import RABBITMQ_BIN_DIR, RabbitMQNode
from common.localservices.rabbitmq_cluster import RabbitMQCluster

__all__ = [
    "RABBITMQ_BIN_DIR",
    "MongoServer",
    "RabbitMQCluster",
    "RabbitMQNode",
    "ServiceError",
    "ServiceNotInstalled",
    "free_port",
]
