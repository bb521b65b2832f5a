"""Container log framing: cri/docker decoding, partial lines joined at their first part, k8s names from paths."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from common.config import InputConfig, MultilineConfig, parse_config
from common.errors import ConfigError
from shipper.container import ContainerFrames, Frame, decode_cri, decode_docker, k8s_metadata, parse_time
from shipper.multiline import Multiline
from shipper.tailer import Line

T = datetime(2026, 11, 30, 10, 0, 0, tzinfo=UTC).timestamp()
UID = "0b6c6f0e-1111-2222-3333-444455556666"
POD_LOG = f"/var/log/pods/shop_web-7d9f-x2x_{UID}/nginx/0.log"


def test_a_cri_line_gives_its_content_stream_time_and_whether_it_is_partial() -> None:
    assert decode_cri(b"2026-11-30T10:00:00.123456789Z stdout F GET / 200 ok") == (
        b"GET / 200 ok", False, Frame(pytest.approx(T + 0.123456789), "stdout", None))
    assert decode_cri(b"2026-11-30T11:00:00.5+01:00 stderr P part ") == (
        b"part ", True, Frame(T + 0.5, "stderr", None))
    assert decode_cri(b"2026-11-30T10:00:00Z stdout F") == (b"", False, Frame(T, "stdout", None))


@pytest.mark.parametrize("raw", [b"plain text", b"2026-11-30T10:00:00Z stdin F x", b"yesterday stdout F x",
                                 b"2026-11-30T10:00:00Z stdout X x"])
def test_a_line_that_is_no_cri_frame_is_kept_whole_with_an_error(raw: bytes) -> None:
    content, partial, frame = decode_cri(raw)
    assert (content, partial, frame.ts) == (raw, False, None) and frame.error


def test_a_docker_line_without_its_newline_is_partial() -> None:
    assert decode_docker(b'{"log":"whole\\n","stream":"stdout","time":"2026-11-30T10:00:00.25Z"}') == (
        b"whole", False, Frame(T + 0.25, "stdout", None))
    assert decode_docker(b'{"log":"caf\\u00e9 ","stream":"stderr","time":"x"}') == (
        "café ".encode(), True, Frame(None, "stderr", None))
    for raw in (b"not json", b'{"stream":"stdout"}', b"[1]"):
        assert decode_docker(raw)[2].error


def test_parse_time_reads_rfc3339_to_the_nanosecond_or_refuses() -> None:
    assert parse_time(b"2026-11-30T10:00:00.000000001Z") == pytest.approx(T + 1e-9)
    assert parse_time(b"2026-11-30T10:00:00-02:00") == T + 7200
    assert parse_time(b"2026-11-30 10:00:00") is None


@pytest.mark.parametrize("path", [
    POD_LOG,
    f"/var/log/pods/shop_web-7d9f-x2x_{UID}/nginx/0.log.20261130-100500",
    f"/var/log/pods/shop_web-7d9f-x2x_{UID}/nginx/12.log",
    "/var/log/containers/web-7d9f-x2x_shop_nginx-" + "ab12" * 16 + ".log",
])
def test_namespace_pod_and_container_come_from_either_kubernetes_path(path: str) -> None:
    assert k8s_metadata(path) == {"namespace": "shop", "pod": "web-7d9f-x2x", "container": "nginx"}


def test_a_container_name_with_dashes_is_read_up_to_the_id_and_other_paths_have_no_k8s_names() -> None:
    link = "/var/log/containers/web_shop_istio-proxy-" + "0" * 64 + ".log"
    assert k8s_metadata(link) == {"namespace": "shop", "pod": "web", "container": "istio-proxy"}
    assert k8s_metadata("/var/lib/docker/containers/abc/abc-json.log") is None
    assert k8s_metadata("/var/log/containers/no-id_here.log") is None


def frames(fmt: str = "cri", max_line_bytes: int = 1 << 20, path: str = POD_LOG, app: str = "") -> ContainerFrames:
    return ContainerFrames(InputConfig(paths=("x",), app=app, format=fmt, max_line_bytes=max_line_bytes), path)


def file_lines(*raws: bytes) -> list[Line]:
    lines, pos = [], 0
    for raw in raws:
        lines.append(Line(pos, pos + len(raw) + 1, raw, False))
        pos += len(raw) + 1
    return lines


def cri(text: str, tag: str = "F", stream: str = "stdout") -> bytes:
    return f"2026-11-30T10:00:00Z {stream} {tag} {text}".encode()


def test_partial_parts_are_joined_at_the_first_part_s_offset_and_end_at_the_last_part_s_end() -> None:
    lines = file_lines(cri("one"), cri("a", "P"), cri("b", "P"), cri("c"))
    stage = frames()
    out = stage.feed(lines[:3])
    assert [line.raw for line in out] == [b"one"], "the parts wait for their last one"
    out = stage.feed(lines[3:])
    assert [(line.offset, line.end, line.raw, line.truncated) for line in out] == [
        (lines[1].offset, lines[3].end, b"abc", False)]


def test_a_join_past_max_line_bytes_keeps_its_head_is_flagged_and_ends_after_its_last_part() -> None:
    lines = file_lines(*(cri("x" * 40, "P") for _ in range(5)), cri("y" * 40), cri("next"))
    out = frames(max_line_bytes=100).feed(lines)
    assert [(line.offset, line.end, line.raw, line.truncated) for line in out] == [
        (0, lines[5].end, b"x" * 100, True), (lines[6].offset, lines[6].end, b"next", False)]


def test_docker_partials_join_the_same_way() -> None:
    lines = file_lines(b'{"log":"a","stream":"stdout","time":"2026-11-30T10:00:00Z"}',
                       b'{"log":"b\\n","stream":"stdout","time":"2026-11-30T10:00:01Z"}')
    [line] = frames("docker").feed(lines)
    assert (line.offset, line.end, line.raw, line.frame) == (0, lines[1].end, b"ab", Frame(T, "stdout", None))


def test_the_other_stream_or_a_broken_line_between_parts_ends_the_join_instead_of_mixing() -> None:
    lines = file_lines(cri("out-a", "P"), cri("err", stream="stderr"), cri("out-b"), cri("c", "P"), b"garbage")
    out = frames().feed(lines)
    assert [(line.offset, line.raw, line.frame.stream) for line in out] == [
        (lines[0].offset, b"out-a", "stdout"), (lines[1].offset, b"err", "stderr"),
        (lines[2].offset, b"out-b", "stdout"), (lines[3].offset, b"c", "stdout"), (lines[4].offset, b"garbage", None)]
    assert out[-1].frame.error


def test_flush_hands_out_the_parts_so_far_and_reset_forgets_them() -> None:
    lines = file_lines(cri("a", "P"), cri("b", "P"))
    stage = frames()
    stage.feed(lines)
    assert [(line.offset, line.end, line.raw) for line in stage.flush()] == [(0, lines[1].end, b"ab")]
    stage.feed(lines)
    stage.reset()
    assert stage.flush() == []


def test_records_get_the_stream_and_the_pod_s_names_and_the_app_defaults_to_the_container() -> None:
    stage = frames()
    assert stage.app == "nginx"
    assert stage.fields(Frame(T, "stderr", None), {"k": 1}) == {
        "k": 1, "stream": "stderr", "k8s": {"namespace": "shop", "pod": "web-7d9f-x2x", "container": "nginx"}}
    assert frames(app="web").app == "web"
    plain = frames("docker", path="/var/lib/docker/containers/abc/abc-json.log")
    assert (plain.app, plain.fields(Frame(None, "stdout", None), {})) == ("docker", {"stream": "stdout"})


def test_a_container_input_needs_no_app_always_skips_gz_and_other_inputs_still_need_an_app() -> None:
    def inputs(*given: dict[str, Any]) -> tuple[InputConfig, ...]:
        return parse_config({"shipper": {"inputs": list(given)}}).shipper.inputs

    cri_input, docker_input = inputs({"paths": ["/var/log/pods/*/*/*.log"], "format": "cri"},
                                     {"paths": ["/d/*.log"], "format": "docker", "exclude": ["*.tmp"]})
    assert (cri_input.app, cri_input.exclude, docker_input.exclude) == ("", ("*.gz",), ("*.tmp", "*.gz"))
    with pytest.raises(ConfigError, match=r"shipper.inputs\[0\].app: is required"):
        inputs({"paths": ["/x.log"], "format": "logfmt"})


def test_multiline_events_of_a_container_keep_the_frame_of_their_first_line() -> None:
    stage = frames()
    cfg = InputConfig(paths=("x",), app="a", format="cri", multiline=MultilineConfig(start_pattern=r"^\d"))
    events = Multiline(cfg).feed(stage.feed(file_lines(cri("1 boom", stream="stderr"), cri("\tat x", stream="stderr"),
                                                       cri("2 next"))))
    assert [(e.raw, e.frame.stream) for e in events] == [(b"1 boom\n\tat x", "stderr")]
