"""What every stage gets: the settings of this run, the generated files, the private services."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / "work" / "run"      # scratch of one run, removed at its end
CACHE_DIR = BENCH_DIR / "work" / "cache"   # kept between runs (see webui_stage); `rm -rf bench/work` drops it


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value.replace("_", "")) if value else default


@dataclass
class Context:
    lines: int                   # BENCH_LINES: lines per generated file
    runs: int                    # BENCH_RUNS: runs per figure; the figure is their median
    db_docs: int                 # BENCH_DB_DOCS: records per database-bound run (the DB is ~100x slower)
    work: Path                   # scratch space, removed at the end
    files: dict[str, dict] = field(default_factory=dict)   # format -> bench.generate.generate() info
    amqp_url: str = ""
    broker_pid: int | None = None
    mongo_uri: str = ""          # the server, without a database: each stage names its own
    mongo_pid: int | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls, work: Path = WORK_DIR) -> Context:
        lines = env_int("BENCH_LINES", 1_000_000)
        return cls(lines=lines, runs=max(1, env_int("BENCH_RUNS", 3)),
                   db_docs=min(lines, env_int("BENCH_DB_DOCS", 30_000)), work=work)

    def path(self, fmt: str) -> str:
        return self.files[fmt]["path"]

    def opslog_command(self, command: str, config: Path) -> list[str]:
        """argv of an opslog process, run from this checkout with this interpreter."""
        return [sys.executable, "-m", "common.cli", command, "-c", str(config)]
