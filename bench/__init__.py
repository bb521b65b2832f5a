"""opslog's benchmark suite: `python -m bench.run` (or `make bench`) writes bench/results.json."""
