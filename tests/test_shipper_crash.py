"""kill -9 at any moment: the registry and the record ids still give every line exactly once."""

from __future__ import annotations

import random
import time

import pytest

from tests.helpers import run_opslog
from tests.shipper_support import QueueReader, Writer, kill9, running_shipper, shipper_config


@pytest.mark.slow
def test_twenty_kill_9s_at_random_moments_during_writes_and_rotations_lose_and_duplicate_nothing(
        tmp_path, write_config, amqp_url, names):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    writer = Writer(log, per_burst=50, pause=0.005)
    config = shipper_config(write_config, tmp_path, [{"paths": [str(logs / "app.log*")], "app": "crash"}],
                            batch_max_records=300)
    chance = random.Random()
    seed = chance.randrange(1 << 30)
    chance.seed(seed)
    reader = QueueReader(amqp_url, names.queue)
    writer.start()
    try:
        for round_ in range(20):
            shipper = run_opslog("ship", config=config)
            time.sleep(chance.uniform(0.2, 2.0))  # from start-up (~0.6 s) to well into reading and publishing
            assert shipper.poll() is None, f"round {round_}: the shipper died by itself:\n{shipper.output()}"
            kill9(shipper)
            if round_ % 5 == 4:
                writer.rotate(lambda rotated=log.with_name(f"app.log.{round_}"): log.rename(rotated))
            reader.poll()
        written = writer.finish()
        with running_shipper(config):
            received = reader.wait_for(len(written), timeout=120, message=f"every line (seed {seed})")
            reader.settle(1.0)
    finally:
        if writer.is_alive():
            writer.finish()
        reader.close()
    received.assert_exactly_once(written)
