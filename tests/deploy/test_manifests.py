"""Offline checks of the compose and Kubernetes files under deploy/ (no Docker engine, no cluster
here): every YAML parses, the required fields are there, the shipped tollway.yaml files pass
tollway's own validation, and the Kubernetes objects validate against the Kubernetes JSON schemas
(kubernetes-validate, which ships them; kubeconform is on neither PyPI nor npm)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tollway.config.loader import parse_config
from tollway.service import parse_roles

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
K8S = DEPLOY / "k8s"
ENGINES = {"kafka", "clickhouse"}


def _documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _k8s_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            objects.extend(_documents(path))
    return objects


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in _k8s_objects() if o["kind"] == kind}


def _is_tollway_command(command: list[str]) -> bool:
    if command[:2] == ["tollway", "dashboard"]:
        return True
    if command[:3] == ["tollway", "serve", "--role"] and len(command) >= 4:
        parse_roles(command[3])  # a role (or comma list) the CLI accepts
        return True
    return False


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_every_yaml_under_deploy_parses(path: Path) -> None:
    assert _documents(path), f"{path} is empty"


def test_compose_services_are_wired() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    tollway = {name: s for name, s in services.items() if "tollway" in str(s.get("command", ""))}
    assert set(tollway) == {"analytics", "worker", "proxy", "dashboard"}
    for name, service in tollway.items():
        assert "image" in service or "build" in service, name
        assert _is_tollway_command(service["command"]), (name, service["command"])
        assert set(service["depends_on"]) >= ENGINES, name
        assert all(
            dep["condition"] == "service_healthy" for dep in service["depends_on"].values()
        ), name
        assert service["healthcheck"]["test"], name
        env = service["environment"]
        assert env["TOLLWAY_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["TOLLWAY_CONFIG"] == "/etc/tollway/tollway.yaml"
        assert env["TOLLWAY_HOST"] == "0.0.0.0"
        assert any(v.endswith(":/etc/tollway/tollway.yaml:ro") for v in service["volumes"])
        env_files = [Path(COMPOSE.parent, f["path"]) for f in service["env_file"]]
        example = env_files[0].read_text()
        assert "TOLLWAY_ADMIN_KEY=" in example and "TOLLWAY_CLICKHOUSE_URL=" in example
    for name in ("analytics", "worker", "proxy"):
        assert "/readyz" in str(tollway[name]["healthcheck"]["test"]), name
    assert services["proxy"]["deploy"]["replicas"] == 2
    assert tollway["proxy"]["command"][3] == "proxy"
    # the load balancer in front of the proxies, with its config file next to compose.yaml
    lb = services["lb"]
    conf = next(v.split(":")[0] for v in lb["volumes"] if "nginx.conf" in v)
    assert "server proxy:8080" in (COMPOSE.parent / conf).read_text()
    assert "proxy" in lb["depends_on"]
    # every file the compose file mounts or builds from exists
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), source
    assert (COMPOSE.parent / services["proxy"]["build"]["context"]).resolve() == DEPLOY.parent
    dockerfile = DEPLOY.parent / services["proxy"]["build"]["dockerfile"]
    text = dockerfile.read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text and "pip install ." in text


def test_compose_tollway_yaml_is_valid() -> None:
    path = COMPOSE.parent / "tollway.yaml"
    parse_config(path.read_text(), path)


def test_k8s_objects_have_the_basics() -> None:
    objects = _k8s_objects()
    assert objects
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind"), obj
        assert obj.get("metadata", {}).get("name"), obj
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    for name, deployment in _by_kind("Deployment").items():
        spec = deployment["spec"]
        assert (
            spec["selector"]["matchLabels"].items()
            <= spec["template"]["metadata"]["labels"].items()
        ), name
        for container in spec["template"]["spec"]["containers"]:
            assert container["image"], name
            assert _is_tollway_command(container["command"]), name
            assert "readinessProbe" in container, name


def test_k8s_proxy_readiness_and_autoscaling() -> None:
    deployments = _by_kind("Deployment")
    proxy = deployments["tollway-proxy"]["spec"]["template"]["spec"]["containers"][0]
    assert proxy["command"][-1] == "proxy"
    assert proxy["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (hpa,) = _by_kind("HorizontalPodAutoscaler").values()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "tollway-proxy")
    assert hpa["spec"]["minReplicas"] >= 2
    assert set(deployments) >= {
        "tollway-proxy",
        "tollway-worker",
        "tollway-analytics",
        "tollway-dashboard",
    }
    # the worker file says why its replicas are bounded
    assert re.search(
        r"replicas <= partitions of tollway\.calls\.v1", (K8S / "worker.yaml").read_text()
    )
    assert "tollway-analytics" in _by_kind("Service")


def test_k8s_config_secret_and_finops_user() -> None:
    configmaps = _by_kind("ConfigMap")
    text = configmaps["tollway-config"]["data"]["tollway.yaml"]
    parse_config(text, "deploy/k8s/config.yaml")
    env = configmaps["tollway-env"]["data"]
    assert env["TOLLWAY_CONFIG"] == "/etc/tollway/tollway.yaml"
    assert env["TOLLWAY_KAFKA_BOOTSTRAP"]
    secret = _by_kind("Secret")["tollway-secrets"]["stringData"]
    assert {"TOLLWAY_ADMIN_KEY", "TOLLWAY_CLICKHOUSE_URL", "OPENAI_API_KEY"} <= set(secret)
    finops = configmaps["clickhouse-finops-user"]["data"]
    assert "<readonly>2</readonly>" in finops["finops.xml"]
    assert "GRANT SELECT ON tollway.*" in finops["finops.xml"]
    assert "GRANT SELECT ON tollway.* TO finops" in finops["finops.sql"]
    for deployment in _by_kind("Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        refs = {next(iter(ref.values()))["name"] for ref in pod["containers"][0]["envFrom"]}
        assert refs == {"tollway-env", "tollway-secrets"}
        assert {"name": "config", "configMap": {"name": "tollway-config"}} in pod["volumes"]


def test_k8s_objects_match_the_kubernetes_schemas() -> None:
    validator = pytest.importorskip(
        "kubernetes_validate",
        reason="kubernetes-validate is not installed (pip install kubernetes-validate); "
        "kubeconform, the first choice, is published on neither PyPI nor npm",
    )
    version = validator.latest_version()
    for obj in _k8s_objects():
        validator.validate(obj, version, strict=True)
