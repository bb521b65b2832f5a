"""Realistic log files for the benchmarks, the same bytes for the same seed.

Four formats, about 180 bytes a line, as the programs that write them do:

- `nginx_combined`: nginx's default access log (`log_format combined`).
- `json`: one JSON object a line, as structured application loggers write them.
- `syslog`: RFC 3164 messages as rsyslog writes them to /var/log/syslog
  (`Nov 26 02:35:00 host prog[pid]: msg`: the `<PRI>` is not kept in files).
- `java`: logback/log4j lines starting `2025-11-26 02:35:00,123`, where errors
  carry multiline stack traces (`\\tat ...`, `Caused by: ...`, `... N more`).
- `cri`: a container's log as containerd writes it for the kubelet
  (`2025-11-26T02:35:00.123000000Z stdout F <logback line>`), a tenth on stderr;
  every line whole (`F`): runtimes split only lines over 16 KiB.
- `logfmt`: the JSON log's events as a Go service writes them
  (`ts=... level=info logger=... msg="..." request_id=... duration_ms=... path=...`).

Values come from small precomputed pools drawn in bulk with `random.Random(seed)`,
and a timestamp is formatted once per second of log time, so a million lines
take about a second. `lines` counts physical lines (newline-terminated), also
for `java`, where an event may span several.

    python -m bench.generate nginx_combined bench/work/access.log --lines 200000
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable, Iterator

FORMATS = ("nginx_combined", "json", "syslog", "java", "cri", "logfmt")
DEFAULT_SEED = 20251126
DEFAULT_START = 1764115200.0  # 2025-11-26T00:00:00Z: the log's first timestamp
LINES_PER_SECOND = 250  # log time advances by 1/250 s a line
_CHUNK = 20_000
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "curl/7.88.1",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "Prometheus/2.53.0",
    "kube-probe/1.30",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
)
_UA_WEIGHTS = (14, 8, 8, 8, 6, 10, 8, 8, 9, 9, 6, 6)
_REFERERS = ("-", "https://shop.example.com/", "https://shop.example.com/cart", "https://www.google.com/",
             "https://shop.example.com/products?category=shoes&page=2", "https://news.example.org/article/4411")
_REFERER_WEIGHTS = (40, 20, 10, 15, 10, 5)
_STATUSES = ("200", "200", "200", "200", "200", "200", "200", "304", "301", "404", "404", "500", "502", "201", "204")
_METHODS = ("GET",) * 12 + ("POST",) * 3 + ("PUT", "DELETE", "HEAD")
_PATH_TEMPLATES = (
    "/api/v1/orders/{n}", "/api/v1/orders?page={s}&per_page=50", "/api/v1/products/{n}/reviews",
    "/static/js/app.{h}.js", "/static/css/main.{h}.css", "/images/products/{n}.webp", "/healthz",
    "/account/login", "/cart", "/search?q=running+shoes&sort=price_asc&page={s}", "/products/{n}",
    "/api/v1/users/{n}/preferences", "/metrics", "/favicon.ico", "/checkout/confirm?order={n}",
)
_APP_LOGGERS = ("orders.api", "orders.worker", "payments.gateway", "catalog.search", "auth.session",
                "inventory.sync", "mailer.queue")
_APP_EVENTS = (
    ("info", "order created"), ("info", "payment authorized"), ("info", "request completed"),
    ("debug", "cache lookup"), ("info", "session refreshed"), ("warning", "slow query detected"),
    ("warning", "retrying upstream call"), ("error", "upstream timed out"), ("info", "message enqueued"),
    ("error", "payment declined by issuer"), ("info", "inventory synced"), ("critical", "database pool exhausted"),
)
_APP_EVENT_WEIGHTS = (20, 12, 30, 8, 8, 5, 4, 3, 5, 2, 2, 1)
_SYSLOG_HOSTS = ("web-01", "web-02", "db-01", "worker-03", "lb-01")
_SYSLOG_PROGRAMS = (
    ("sshd", "Accepted publickey for deploy from 10.20.{a}.{b} port {port} ssh2: ED25519 SHA256:{h}{h}"),
    ("sshd", "Disconnected from authenticating user root 203.0.113.{b} port {port} [preauth]"),
    ("CRON", "(root) CMD (/usr/local/bin/backup-rotate --keep 14 --target /srv/backups/{h} >/dev/null 2>&1)"),
    ("systemd", "Started session-{n}.scope - Session {n} of User deploy (uid 1000, gid 1000, seat none)."),
    ("kernel", "[{n}.{port}] nf_conntrack: table full, dropping packet; src=10.20.{a}.{b} dst=10.20.0.1 len=60"),
    ("postfix/smtp", "{h}: to=<orders-{n}@example.com>, relay=mx.example.com[192.0.2.25]:25, delay=0.{b}, status=sent"),
    ("kernel", "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=198.51.100.{b} "
               "DST=10.20.{a}.7 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID={port} DF PROTO=TCP SPT={port} DPT=22 SYN URGP=0"),
    ("nginx", "[error] 1234#1234: *{n} upstream timed out (110: Connection timed out) while reading "
              "response header from upstream, client: 10.20.{a}.{b}, server: shop.example.com, "
              "request: \"GET / HTTP/1.1\""),
    ("dockerd", "level=info msg=\"ignoring event\" container={h}{h} module=libcontainerd namespace=moby"),
)
_JAVA_THREADS = tuple(f"http-nio-8080-exec-{i}" for i in range(1, 21)) + ("scheduling-1", "main", "kafka-consumer-0")
_JAVA_CLASSES = ("c.e.orders.OrderController", "c.e.orders.OrderService", "c.e.payments.PaymentClient",
                 "c.e.catalog.SearchService", "o.s.web.servlet.DispatcherServlet", "c.e.inventory.SyncJob")
_JAVA_INFO = (
    "GET /api/orders/{n} completed in {ms} ms status=200 user=u{u} tenant=acme-retail",
    "Processed order {n} for customer u{u}: 3 items, total=129.90 EUR, carrier=DHL, eta=2 days",
    "Search for 'running shoes' returned {ms} hits in {ms} ms (index=products-v7, shard=2 of 4)",
    "Inventory sync batch {n} done: 500 SKUs checked, {ms} updated, 0 conflicts, took {ms} ms",
)
_JAVA_EXCEPTIONS = (
    "java.lang.IllegalStateException: Order {n} is already in state SHIPPED and cannot be cancelled",
    "org.springframework.dao.DataAccessResourceFailureException: Unable to acquire JDBC Connection",
    "java.net.SocketTimeoutException: Read timed out after 5000 ms calling payments-gateway:8443",
    "java.lang.NullPointerException: Cannot invoke \"com.example.orders.Customer.getId()\" because \"c\" is null",
)
_JAVA_FRAMES = (
    "com.example.orders.OrderService.cancel(OrderService.java:{ln})",
    "com.example.orders.OrderController.cancelOrder(OrderController.java:{ln})",
    "com.example.payments.PaymentClient.authorize(PaymentClient.java:{ln})",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:{ln})",
    "org.springframework.transaction.interceptor.TransactionInterceptor.invoke(TransactionInterceptor.java:{ln})",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:{ln})",
    "org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun(NioEndpoint.java:{ln})",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:{ln})",
    "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:{ln})",
)


class _Pools:
    """Value pools for one seed: every format draws from these in bulk."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.ips = [f"{rng.choice((10, 172, 192, 203))}.{rng.randrange(256)}.{rng.randrange(256)}."
                    f"{rng.randrange(1, 255)}" for _ in range(4000)]
        self.hexes = ["".join(rng.choice("0123456789abcdef") for _ in range(10)) for _ in range(2000)]
        self.paths = [self._fill(rng.choice(_PATH_TEMPLATES)) for _ in range(6000)]
        self.sizes = [str(int(rng.lognormvariate(8, 1.4))) for _ in range(5000)]
        self.syslog = [(prog, self._fill(msg)) for prog, msg in
                       (rng.choice(_SYSLOG_PROGRAMS) for _ in range(6000))]
        self.java_info = [self._fill(rng.choice(_JAVA_INFO)) for _ in range(6000)]
        self.frames = [self._fill(rng.choice(_JAVA_FRAMES)) for _ in range(3000)]
        self.exceptions = [self._fill(rng.choice(_JAVA_EXCEPTIONS)) for _ in range(500)]

    def _fill(self, template: str) -> str:
        r = self.rng
        return template.format(n=r.randrange(1, 10**7), s=r.randrange(1, 40),
                               h="".join(r.choice("0123456789abcdef") for _ in range(12)),
                               a=r.randrange(256), b=r.randrange(256), port=r.randrange(1024, 65535),
                               ms=r.randrange(1, 2000), u=r.randrange(1, 10**6), ln=r.randrange(20, 900))


class _Clock:
    """Log time for line i; formats each second once."""

    def __init__(self, start: float, fmt: Callable[[time.struct_time], str]):
        self.start, self.fmt = start, fmt
        self.cached_second, self.cached_text = -1, ""

    def second(self, i: int) -> str:
        sec = int(self.start + i / LINES_PER_SECOND)
        if sec != self.cached_second:
            self.cached_second, self.cached_text = sec, self.fmt(time.gmtime(sec))
        return self.cached_text

    @staticmethod
    def millis(i: int) -> int:
        return (i * 1000 // LINES_PER_SECOND) % 1000


def _nginx_time(t: time.struct_time) -> str:
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def _iso_time(t: time.struct_time) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", t)


def _syslog_time(t: time.struct_time) -> str:
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def _java_time(t: time.struct_time) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", t)


def _nginx_chunks(p: _Pools, n: int, start: float) -> Iterator[list[str]]:
    r, clock = p.rng, _Clock(start, _nginx_time)
    for base in range(0, n, _CHUNK):
        k = min(_CHUNK, n - base)
        ips, paths, sizes = r.choices(p.ips, k=k), r.choices(p.paths, k=k), r.choices(p.sizes, k=k)
        methods, statuses = r.choices(_METHODS, k=k), r.choices(_STATUSES, k=k)
        refs = r.choices(_REFERERS, _REFERER_WEIGHTS, k=k)
        uas = r.choices(_USER_AGENTS, _UA_WEIGHTS, k=k)
        yield [f'{ips[j]} - - [{clock.second(base + j)}] "{methods[j]} {paths[j]} HTTP/1.1" '
               f'{statuses[j]} {sizes[j]} "{refs[j]}" "{uas[j]}"\n' for j in range(k)]


def _json_chunks(p: _Pools, n: int, start: float) -> Iterator[list[str]]:
    r, clock = p.rng, _Clock(start, _iso_time)
    for base in range(0, n, _CHUNK):
        k = min(_CHUNK, n - base)
        events = r.choices(_APP_EVENTS, _APP_EVENT_WEIGHTS, k=k)
        loggers, ids, paths = r.choices(_APP_LOGGERS, k=k), r.choices(p.hexes, k=k), r.choices(p.paths, k=k)
        durations = [r.randrange(1, 250000) for _ in range(k)]
        lines = []
        for j in range(k):
            i = base + j
            level, msg = events[j]
            lines.append(f'{{"ts":"{clock.second(i)}.{clock.millis(i):03d}Z","level":"{level}",'
                         f'"logger":"{loggers[j]}","msg":"{msg}","request_id":"{ids[j]}",'
                         f'"duration_ms":{durations[j] / 100},'
                         f'"path":"{paths[j]}"}}\n')
        yield lines


def _syslog_chunks(p: _Pools, n: int, start: float) -> Iterator[list[str]]:
    r, clock = p.rng, _Clock(start, _syslog_time)
    for base in range(0, n, _CHUNK):
        k = min(_CHUNK, n - base)
        hosts, msgs = r.choices(_SYSLOG_HOSTS, k=k), r.choices(p.syslog, k=k)
        pids = [r.randrange(300, 40000) for _ in range(k)]
        # the kernel logs without a pid, every daemon with one
        tags = [prog if prog == "kernel" else f"{prog}[{pid}]" for (prog, _), pid in zip(msgs, pids, strict=True)]
        yield [f"{clock.second(base + j)} {hosts[j]} {tags[j]}: {msgs[j][1]}\n" for j in range(k)]


def _java_chunks(p: _Pools, n: int, start: float) -> Iterator[list[str]]:
    r, clock = p.rng, _Clock(start, _java_time)
    i, lines = 0, []
    while i < n:
        head = f"{clock.second(i)},{clock.millis(i):03d}"
        depth = r.randrange(6, 22)
        if r.random() < 0.05 and n - i >= depth + 4:
            lines.append(f"{head} ERROR [{r.choice(_JAVA_THREADS)}] {r.choice(_JAVA_CLASSES)} - "
                         f"Request failed: {r.choice(p.java_info)}\n")
            lines.append(r.choice(p.exceptions) + "\n")
            lines.extend(f"\tat {frame}\n" for frame in r.choices(p.frames, k=depth))
            lines.append(f"Caused by: {r.choice(p.exceptions)}\n")
            lines.append(f"\t... {depth - 2} more\n")
            i += depth + 4
        else:
            level = r.choice(("INFO ", "INFO ", "INFO ", "DEBUG", "WARN "))
            lines.append(f"{head} {level} [{r.choice(_JAVA_THREADS)}] {r.choice(_JAVA_CLASSES)} - "
                         f"{r.choice(p.java_info)}\n")
            i += 1
        if len(lines) >= _CHUNK:
            yield lines
            lines = []
    if lines:
        yield lines


def _cri_chunks(p: _Pools, n: int, start: float) -> Iterator[list[str]]:
    r, clock, app = p.rng, _Clock(start, _iso_time), _Clock(start, _java_time)
    for base in range(0, n, _CHUNK):
        k = min(_CHUNK, n - base)
        infos, threads = r.choices(p.java_info, k=k), r.choices(_JAVA_THREADS, k=k)
        classes = r.choices(_JAVA_CLASSES, k=k)
        levels = r.choices(("INFO ", "INFO ", "INFO ", "DEBUG", "WARN "), k=k)
        streams = r.choices(("stdout", "stderr"), (9, 1), k=k)
        lines = []
        for j in range(k):
            i, ms = base + j, clock.millis(base + j)
            lines.append(f"{clock.second(i)}.{ms:03d}000000Z {streams[j]} F {app.second(i)},{ms:03d} {levels[j]} "
                         f"[{threads[j]}] {classes[j]} - {infos[j]}\n")
        yield lines


def _logfmt_value(text: str) -> str:
    return f'"{text}"' if any(c in text for c in ' ="') else text


def _logfmt_chunks(p: _Pools, n: int, start: float) -> Iterator[list[str]]:
    r, clock = p.rng, _Clock(start, _iso_time)
    paths = [_logfmt_value(path) for path in p.paths]
    for base in range(0, n, _CHUNK):
        k = min(_CHUNK, n - base)
        events = r.choices(_APP_EVENTS, _APP_EVENT_WEIGHTS, k=k)
        loggers, ids, picked = r.choices(_APP_LOGGERS, k=k), r.choices(p.hexes, k=k), r.choices(paths, k=k)
        durations = [r.randrange(1, 250000) for _ in range(k)]
        lines = []
        for j in range(k):
            i = base + j
            level, msg = events[j]
            lines.append(f'ts={clock.second(i)}.{clock.millis(i):03d}Z level={level} logger={loggers[j]} '
                         f'msg="{msg}" request_id={ids[j]} duration_ms={durations[j] / 100} path={picked[j]}\n')
        yield lines


_WRITERS = {"nginx_combined": _nginx_chunks, "json": _json_chunks, "syslog": _syslog_chunks, "java": _java_chunks,
            "cri": _cri_chunks, "logfmt": _logfmt_chunks}


def generate(path: str, fmt: str, lines: int, seed: int = DEFAULT_SEED, start: float = DEFAULT_START) -> dict:
    """Write `lines` lines of `fmt` to `path`; {"path", "format", "lines", "bytes", "seconds"}."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    began = time.perf_counter()
    pools = _Pools(random.Random(f"{seed}:{fmt}"))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    written = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for chunk in _WRITERS[fmt](pools, lines, start):
            out.write("".join(chunk))
            written += len(chunk)
    return {"path": path, "format": fmt, "lines": written, "bytes": os.path.getsize(path),
            "seconds": round(time.perf_counter() - began, 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("format", choices=FORMATS)
    parser.add_argument("path")
    parser.add_argument("--lines", type=int, default=int(os.environ.get("BENCH_LINES", 1_000_000)))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    info = generate(args.path, args.format, args.lines, args.seed)
    print(f"{args.path}: {info['lines']} lines, {info['bytes']} bytes "
          f"({info['bytes'] / max(info['lines'], 1):.0f} B/line) in {info['seconds']} s")


if __name__ == "__main__":
    main()
