"""`serve(config)`: the app behind waitress, the production WSGI server of `opslog web`.

Why waitress: one process, so the app's own Prometheus registry and MongoDB pool are
whole (gunicorn's forked workers would each count a part); a bounded pool of
`webui.threads` threads runs requests while one asyncore loop does all socket I/O, so
slow clients and idle keep-alive connections hold no thread; responses are streamed
chunk by chunk (exports, the live tail's Server-Sent Events) with
back-pressure, and a streaming response holds one thread for its length. How many
threads to give it, and why a few long streams cannot starve the rest, is in
README.md ("Serving the web UI").

Timeouts: `webui.request_timeout` closes a connection that sends nothing for that long
(a request that never completes, slowloris, or an idle keep-alive); the time a query
may run is bounded by the queries' `maxTimeMS`, since a thread cannot be interrupted.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

from waitress.server import create_server

from common.config import Config
from webui import close_app, create_app

log = logging.getLogger(__name__)
MAX_REQUEST_BODY = 64 * 1024  # the API takes no uploads; matches the app's MAX_CONTENT_LENGTH


class _Stop(SystemExit):
    """Raised in the main thread by SIGTERM/SIGINT; waitress' loop ends on SystemExit."""


def server_options(config: Config) -> dict[str, Any]:
    """waitress adjustments from `config.webui`."""
    web = config.webui
    host, _, port = web.listen.rpartition(":")
    return {"host": host.strip("[]"), "port": int(port), "threads": web.threads,
            "connection_limit": web.connection_limit, "channel_timeout": max(1, round(web.request_timeout)),
            "cleanup_interval": max(1, min(30, round(web.request_timeout / 2))),
            "max_request_body_size": MAX_REQUEST_BODY, "ident": "opslog"}


def serve(config: Config) -> None:
    """Serve on `webui.listen` until SIGTERM/SIGINT."""
    app = create_app(config)
    server = create_server(app, **server_options(config))

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping the web UI", signal.Signals(signum).name)
        raise _Stop(0)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("web UI listening on http://%s (%d threads, connections idle for %ss are closed)",
             config.webui.listen, config.webui.threads, config.webui.request_timeout)
    try:
        server.run()  # returns after a SystemExit, its threads finished or given 5 s
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if not server.task_dispatcher.threads:
            server.close()
            close_app(app)
        # else requests still run after the 5 s grace (a query without an end): their threads are
        # daemons and end with the process; closing their sockets and database under them would
        # only log a traceback each
        log.info("web UI stopped")
