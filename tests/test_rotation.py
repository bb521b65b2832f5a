"""The one rule for rotated names (common.rotation), as the importer and the web UI's context need it."""

from __future__ import annotations

import pytest

from common.rotation import rotated_name, rotation_base


@pytest.mark.parametrize("name", ["app.log.1", "app.log.12", "app.log-1", "app.log-20240131", "app.log-2024013112",
                                  "app.log.20240131103000", "app.log.2024-01-31", "app.log-2024-01-31T10",
                                  "app.log.1.gz", "app.log-20240131.gz", "app.log.gz", "app.log.3.zst",
                                  "app.log.20240131-101500"])  # the kubelet's rotation
def test_a_rotated_name_is_its_file_with_a_number_or_date_and_a_compression_suffix(name):
    assert rotation_base(f"/var/log/{name}") == "/var/log/app.log"


def test_a_name_without_a_suffix_is_its_own_base_and_the_parts_are_kept():
    assert rotation_base("/var/log/app.2/app.log") == "/var/log/app.2/app.log"
    assert rotated_name("/var/log/app.log.2.bz2") == ("/var/log/app.log", ".2", ".bz2")
