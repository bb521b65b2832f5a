"""The DaemonSet example (deploy/kubernetes/): valid Kubernetes objects (the API's own schema, offline,
through kubernetes-validate), and wired the way the shipper needs on a node."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from common.config import parse_config
from tests.helpers import REPO_ROOT

MANIFEST = REPO_ROOT / "deploy" / "kubernetes" / "opslog-shipper.yaml"
KUBERNETES_VERSION = "1.31"  # the oldest minor still supported upstream when this was written


def objects() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def by_kind(kind: str) -> dict[str, Any]:
    [found] = [doc for doc in objects() if doc["kind"] == kind]
    return found


@pytest.mark.parametrize("doc", objects(), ids=lambda d: d["kind"])
def test_every_object_passes_the_kubernetes_schema_strictly(doc: dict[str, Any]) -> None:
    # strict: an unknown or misspelt field (`readonly:`, `hostpath:`) fails, as `kubectl --validate=strict` does
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_misspelt_field_is_caught_by_the_same_check() -> None:
    daemonset = by_kind("DaemonSet")
    daemonset["spec"]["template"]["spec"]["volumes"][0]["hostpath"] = {"path": "/x"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, KUBERNETES_VERSION, strict=True)


def test_pod_logs_are_mounted_read_only_and_the_registry_lives_on_the_node() -> None:
    pod = by_kind("DaemonSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    [container] = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    logs = mounts["/var/log/pods"]
    assert logs["readOnly"] is True and volumes[logs["name"]]["hostPath"]["path"] == "/var/log/pods"

    config = parse_config(yaml.safe_load(by_kind("ConfigMap")["data"]["shipper.yaml"]),
                          env={"NODE_NAME": "node-1", "OPSLOG_AMQP_URL": "amqp://x@mq:5672/opslog"})
    state = mounts[config.shipper.state_dir]
    assert not state.get("readOnly") and "hostPath" in volumes[state["name"]], "offsets must outlive the pod"
    assert config.shipper.host == "node-1"
    [inp] = config.shipper.inputs
    assert inp.format == "cri" and all(path.startswith("/var/log/pods/") for path in inp.paths)
    assert "*.gz" in inp.exclude
    config_mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert container["args"] == ["ship", "-c", f"{config_mount['mountPath']}/shipper.yaml"]
