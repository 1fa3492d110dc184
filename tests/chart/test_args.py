"""The container's arguments are flags the exporter really has, and it parses them as meant.

The rendered args go through `exporter.cli.load(RunSettings, "run", args)`, the same parser the
daemon uses; `$(SHARD)` is expanded as the kubelet would, from the pod-index label.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from exporter import __version__
from exporter.cli import load
from exporter.settings import ENV_PREFIX, RunSettings
from tests.support.helm import (
    VALUE_SETS,
    Helm,
    Render,
    container,
    gardener_preset_args,
    one,
    parse_manifests,
    workload,
)

POD_INDEX_PATH = "metadata.labels['apps.kubernetes.io/pod-index']"


@pytest.fixture(autouse=True)
def _no_exporter_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the rendered args may configure the settings under test."""
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def help_flags() -> set[str]:
    """Every flag `etcd-latency-exporter run --help` lists."""
    proc = subprocess.run(
        [sys.executable, "-m", "exporter", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9.-]*)", proc.stdout))
    assert "--scrape.interval" in flags
    assert "--shard" in flags
    return flags


def _expanded_args(render: Render, name: str, shard: int = 1) -> list[str]:
    """The container args with $(VAR) expanded from its env, the way the kubelet does it."""
    exporter = container(render(name))
    env: dict[str, str] = {}
    for var in exporter.get("env", []):
        if var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == POD_INDEX_PATH:
            env[var["name"]] = str(shard)
        elif "value" in var:
            env[var["name"]] = var["value"]
    args: list[str] = exporter["args"]
    return [re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), arg) for arg in args]


def _settings(render: Render, name: str, shard: int = 1) -> RunSettings:
    args = _expanded_args(render, name, shard)
    assert args[0] == "run"
    return load(RunSettings, "run", args[1:])


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_flag_exists(render: Render, help_flags: set[str], name: str) -> None:
    """Each rendered flag is one `run --help` lists."""
    args = container(render(name))["args"]
    assert args[0] == "run"
    for arg in args[1:]:
        assert arg.split("=", 1)[0] in help_flags, arg


@pytest.mark.parametrize("name", VALUE_SETS)
def test_exporter_accepts_the_args(render: Render, name: str) -> None:
    """The exporter's own parser accepts the rendered args (it exits 2 on any problem)."""
    assert isinstance(_settings(render, name), RunSettings)


def test_default_args_are_the_exporter_defaults(render: Render) -> None:
    """With default values the chart configures what the exporter defaults to, in JSON logs."""
    rendered = _settings(render, "default").model_dump()
    expected = load(RunSettings, "run", []).model_dump()
    differences = {key for key in expected if rendered[key] != expected[key]}
    assert differences == {"log"}
    assert rendered["log"] == {**expected["log"], "format": "json"}


def test_default_image_is_the_app_version(render: Render) -> None:
    """The default image tag is appVersion, which is the exporter's version."""
    assert container(render("default"))["image"] == f"etcd-latency-exporter:{__version__}"


def test_selectors_with_commas_survive(render: Render) -> None:
    """Selectors with commas, `in (…)` and `!=` reach the exporter as whole selectors."""
    settings = _settings(render, "gardener")
    assert settings.kubernetes.selectors == [
        "app.kubernetes.io/managed-by=etcd-druid,"
        "app.kubernetes.io/part-of in (etcd-main,etcd-events)",
        "app=etcd-statefulset,role!=backup",
    ]
    assert settings.kubernetes.expected_storage_classes == {"etcd-main": "gardener.cloud-fast"}
    assert settings.storage.disk_class_overrides == {"gardener.cloud-fast": "ssd", "default": "hdd"}
    assert settings.limits.max_series_per_target == 4000
    assert settings.logs.since == 600.0


def test_default_uses_the_secret_refs(render: Render) -> None:
    """Default: etcd's own /metrics over mTLS with the Secrets each member's Etcd resource names."""
    scrape = _settings(render, "default").scrape
    assert (scrape.source, scrape.scheme, scrape.port) == ("etcd", "https", 2379)
    assert scrape.secret_refs is True
    assert not scrape.client_secret
    assert (scrape.cert_file, scrape.key_file, scrape.server_name) == (None, None, None)


def test_fixed_client_secret(helm: Helm) -> None:
    """clientSecret: the Secret of that name in each namespace, with its keys."""
    result = helm.template(
        sets=["scrape.clientSecret.enabled=true", "scrape.clientSecret.caKey=bundle.crt"]
    )
    assert result.returncode == 0, result.stderr
    args = container(parse_manifests(result.stdout))["args"]
    scrape = load(RunSettings, "run", args[1:]).scrape
    assert (scrape.client_secret, scrape.client_secret_ca_key) == ("etcd-client", "bundle.crt")
    assert scrape.secret_refs is True


def test_gardener_preset_args(helm: Helm) -> None:
    """The preset: secret refs, server name {etcd}-local, etcd-main expected on the fast class."""
    settings = load(RunSettings, "run", gardener_preset_args(helm))
    scrape = settings.scrape
    assert (scrape.source, scrape.secret_refs, scrape.server_name) == ("etcd", True, "{etcd}-local")
    assert scrape.insecure_skip_verify is False
    assert not scrape.client_secret
    assert settings.kubernetes.expected_storage_classes == {"etcd-main": "gardener.cloud-fast"}
    assert settings.kubernetes.etcd_resources is True


def test_gardener_preset_shoot_prometheus_args(helm: Helm) -> None:
    """shoot-prometheus: the source and the exporter's default URL, no Secret of any kind."""
    args = gardener_preset_args(helm, source="shoot-prometheus")
    assert "--no-scrape.secret-refs" in args
    assert not [a for a in args if a.startswith("--scrape.client-secret")]
    scrape = load(RunSettings, "run", args).scrape
    default = load(RunSettings, "run", []).scrape
    assert (scrape.source, scrape.secret_refs) == ("shoot-prometheus", False)
    assert scrape.shoot_prometheus_url == default.shoot_prometheus_url
    assert scrape.shoot_prometheus_jobs == default.shoot_prometheus_jobs
    assert (scrape.cert_file, scrape.key_file, scrape.client_secret) == (None, None, None)
    assert scrape.server_name is None


def test_shoot_prometheus_url_and_jobs(render: Render) -> None:
    """scrape.shootPrometheus.{url,jobs} become the exporter's flags."""
    scrape = _settings(render, "gardener-shoot-prometheus").scrape
    assert scrape.source == "shoot-prometheus"
    assert scrape.shoot_prometheus_url == "http://prometheus-shoot.{namespace}.svc:80"


def test_values_win_over_the_preset(helm: Helm) -> None:
    """An explicit server name and expected class replace the preset's."""
    args = gardener_preset_args(
        helm,
        sets=[
            "scrape.serverName=etcd.internal.example",
            "kubernetes.expectedStorageClasses.etcd-main=premium-rwo",
        ],
    )
    settings = load(RunSettings, "run", args)
    assert settings.scrape.server_name == "etcd.internal.example"
    assert settings.kubernetes.expected_storage_classes == {"etcd-main": "premium-rwo"}


def test_tls_files(render: Render) -> None:
    """tlsFiles: the Secret's files, no per-namespace Secret."""
    scrape = _settings(render, "mtls-files").scrape
    mount = "/etc/etcd-latency-exporter/tls"
    assert not scrape.client_secret
    assert scrape.secret_refs is False
    assert (scrape.ca_file, scrape.cert_file, scrape.key_file) == (
        f"{mount}/bundle.crt",
        f"{mount}/tls.crt",
        f"{mount}/tls.key",
    )
    assert scrape.server_name == "etcd-main-local"


def test_plain_http(render: Render) -> None:
    """http: no Secret, the given port, interval and log settings."""
    settings = _settings(render, "http")
    assert (settings.scrape.scheme, settings.scrape.port) == ("http", 2381)
    assert not settings.scrape.client_secret
    assert settings.scrape.secret_refs is False
    assert (settings.scrape.interval, settings.scrape.timeout) == (60.0, 15.0)
    assert settings.kubernetes.etcd_resources is False
    assert (settings.log.level, settings.log.format) == ("debug", "logfmt")


def test_static_discovery(render: Render) -> None:
    """static: the targets file, which the pod mounts."""
    settings = _settings(render, "static")
    assert settings.discovery == "static"
    path = "/etc/etcd-latency-exporter/targets/targets.yaml"
    assert settings.static.targets_file == path
    mounts = [m["mountPath"] for m in container(render("static"))["volumeMounts"]]
    assert any(path.startswith(mount + "/") for mount in mounts)


@pytest.mark.parametrize("shard", [0, 1, 2])
def test_sharding_from_pod_index(render: Render, shard: int) -> None:
    """StatefulSet: --shard is the pod ordinal (pod-index label), --total-shards the replicas."""
    manifests = render("sharding")
    statefulset = one(manifests, "StatefulSet")
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["serviceName"] == one(manifests, "Service")["metadata"]["name"]
    env: list[dict[str, Any]] = container(manifests)["env"]
    assert {"name": "SHARD", "valueFrom": {"fieldRef": {"fieldPath": POD_INDEX_PATH}}} in env
    assert "--shard=$(SHARD)" in container(manifests)["args"]
    settings = _settings(render, "sharding", shard)
    assert (settings.shard, settings.total_shards) == (shard, 3)


def test_unsharded_is_a_deployment(render: Render) -> None:
    """Without sharding: a Deployment and no shard flags."""
    manifests = render("default")
    assert workload(manifests)["kind"] == "Deployment"
    assert not [a for a in container(manifests)["args"] if "shard" in a]


def test_provider_check_off(helm: Helm) -> None:
    """kubernetes.providerCheck=false reaches the exporter as --no-kubernetes.provider-check."""
    result = helm.template(sets=["kubernetes.providerCheck=false"])
    assert result.returncode == 0, result.stderr
    args = container(parse_manifests(result.stdout))["args"]
    settings = load(RunSettings, "run", args[1:])
    assert settings.kubernetes.provider_check is False
