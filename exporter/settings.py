"""Configuration: flags in Prometheus style, each also an `ETCD_LATENCY_…` environment variable.

Validation only; nothing here opens a file or a socket. `--scrape.interval` is the field `interval`
of the nested model `scrape`; its environment variable is `ETCD_LATENCY_SCRAPE__INTERVAL`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, CliPositionalArg, SettingsConfigDict

from exporter.durations import parse_duration
from exporter.metrics import CLASS_MEDIAN_MIN_MEMBERS
from exporter.model import ENV_PREFIX as ENV_PREFIX  # re-exported: the CLI names variables
from exporter.model import MAX_LINE_BYTES, ParseOutput

DEFAULT_PORT = 18379
DEFAULT_LISTEN_ADDRESS = f":{DEFAULT_PORT}"


def _duration(value: object) -> float:
    if isinstance(value, str | int | float):
        return parse_duration(value)
    raise ValueError(f"not a duration: {value!r}")


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_duration), AfterValidator(_positive)]


def _listen_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected [host]:port, got {value!r}")
    del host
    return value


ListenAddress = Annotated[str, AfterValidator(_listen_address)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WebConfigSettings(_Section):
    file: str | None = Field(
        None,
        description="exporter-toolkit web config file (TLS, basic auth) for the endpoint.",
    )


class WebSettings(_Section):
    listen_address: ListenAddress = Field(
        DEFAULT_LISTEN_ADDRESS, description="Address to serve /metrics, /healthz, /readyz and / on."
    )
    telemetry_path: str = Field("/metrics", description="Path of the metrics endpoint.")
    config: WebConfigSettings = Field(default_factory=lambda: WebConfigSettings())
    disable_exporter_metrics: bool = Field(
        False, description="Leave out process_* and python_* metrics."
    )


class LogSettings(_Section):
    level: Literal["debug", "info", "warn", "error"] = Field(
        "info", description="Level of the exporter's own log."
    )
    format: Literal["logfmt", "json"] = Field(
        "logfmt", description="Format of the exporter's own log."
    )


class StaticSettings(_Section):
    targets_file: str | None = Field(
        None, description="YAML file of targets for --discovery=static (re-read on change/SIGHUP)."
    )


class KubernetesSettings(_Section):
    kubeconfig: str | None = Field(
        None, description="kubeconfig file; default: in-cluster config, else $KUBECONFIG."
    )
    context: str | None = Field(None, description="kubeconfig context to use.")
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch (default: all)."
    )
    selectors: list[str] = Field(
        default_factory=lambda: [
            "app.kubernetes.io/managed-by=etcd-druid,"
            "app.kubernetes.io/part-of in (etcd-main,etcd-events)",
            "app=etcd-statefulset",
        ],
        description="Label selectors of etcd pods; a pod matching any of them is followed.",
    )
    container: str = Field("etcd", description="Name of the etcd container in the pod.")
    data_volume: str | None = Field(
        None,
        description="Name of the pod volume holding etcd's data (default: the PVC the etcd "
        "container mounts at its data dir).",
    )
    etcd_resources: bool = Field(
        True, description="Read druid.gardener.cloud Etcd resources for the expected StorageClass."
    )
    expected_storage_classes: dict[str, str] = Field(
        default_factory=dict,
        description="Expected StorageClass per etcd role when no Etcd resource says, e.g. "
        '{"etcd-main":"gardener.cloud-fast"}.',
    )
    provider_check: bool = Field(
        True,
        description="Watch nodes (spec.providerID) and namespaces (seed.gardener.cloud/provider) "
        "to tell a member whose namespace declares another provider type than its node runs on.",
    )
    request_timeout: PositiveDuration = Field(30.0, description="Timeout of API list/get calls.")
    watch_timeout: PositiveDuration = Field(
        300.0, description="Server-side timeout of one watch call before it is renewed."
    )
    member_grace: Duration = Field(
        120.0,
        description="How long a member stays after its pod is gone (a re-created pod continues "
        "its series and counters); a deleted namespace removes its members at once.",
    )


class ScrapeSettings(_Section):
    interval: PositiveDuration = Field(
        30.0, description="How often each etcd's /metrics is scraped."
    )
    timeout: PositiveDuration = Field(10.0, description="Timeout of one scrape.")
    max_bytes: int = Field(
        16 * 1024 * 1024, gt=0, description="Largest /metrics response accepted, in bytes."
    )
    concurrency: int = Field(256, gt=0, description="Scrapes in flight at once.")
    source: Literal["etcd", "shoot-prometheus"] = Field(
        "etcd",
        description="Kubernetes mode: where the relayed etcd families come from. etcd: each "
        "member's own /metrics (mTLS, reads the client certificate's Secrets). shoot-prometheus: "
        "the Prometheus of the member's namespace, through /federate (no Secret is read).",
    )
    shoot_prometheus_url: str = Field(
        "http://prometheus-shoot.{namespace}.svc:80",
        description="Base URL of the Prometheus that scrapes the etcd members of a namespace, "
        "with {namespace} filled in (--scrape.source=shoot-prometheus; Gardener's prometheus-shoot "
        "Service).",
    )
    shoot_prometheus_jobs: str = Field(
        "kube-etcd3-(main|events)",
        description="Regular expression (anchored, Prometheus syntax) of the job label of the etcd "
        "series in that Prometheus.",
    )
    scheme: Literal["http", "https"] = Field(
        "https", description="Scheme of etcd's metrics URL in Kubernetes mode."
    )
    port: int = Field(2379, ge=1, le=65535, description="Port of etcd's metrics URL (Kubernetes).")
    path: str = Field("/metrics", description="Path of etcd's metrics URL (Kubernetes).")
    ca_file: str | None = Field(None, description="CA bundle to verify etcd's server certificate.")
    cert_file: str | None = Field(None, description="Client certificate for etcd mTLS.")
    key_file: str | None = Field(None, description="Client key for etcd mTLS.")
    insecure_skip_verify: bool = Field(
        False,
        description="Do not verify etcd's certificate (an opt-out: anyone on the path can then "
        "read the scrapes).",
    )
    server_name: str | None = Field(
        None,
        description="Server name to verify etcd's certificate, with {etcd}, {namespace} and {pod} "
        "filled in per member, e.g. {etcd}-local for Gardener (default: the pod IP).",
    )
    secret_refs: bool = Field(
        True,
        description="Kubernetes mode, https: take the client certificate and CA from the Secrets "
        "the member's Etcd resource names (spec.etcd.clientUrlTls), else from the pod's "
        "etcd-client-tls/etcd-ca volumes.",
    )
    client_secret: str | None = Field(
        None,
        description="Secret of a fixed name in the etcd pod's namespace with the client "
        "certificate (Kubernetes mode, https), for clusters without etcd-druid; a member "
        "whose Etcd resource or pod names its Secrets uses those.",
    )
    client_secret_ca_key: str = Field("ca.crt", description="Key of the CA in the secret.")
    client_secret_cert_key: str = Field("tls.crt", description="Key of the cert in the secret.")
    client_secret_key_key: str = Field(
        "tls.key", description="Key of the private key in the secret."
    )


class LogsSettings(_Section):
    since: Duration = Field(
        0.0, description="On first start, read this much of each log's past (0: start at now)."
    )
    from_start: bool = Field(
        False, description="File sources: read existing content on first start instead of the end."
    )
    inactivity_timeout: PositiveDuration = Field(
        300.0, description="Reopen a log stream that delivered nothing for this long."
    )
    max_line_bytes: int = Field(
        MAX_LINE_BYTES, gt=0, description="Longest log line kept; longer lines count as unparsed."
    )


class StorageSettings(_Section):
    disk_class_overrides: dict[str, Literal["ssd", "hdd", "unknown"]] = Field(
        default_factory=dict,
        description="Disk class per StorageClass name or provisioner, e.g. "
        '{"csi-lvm":"ssd","rancher.io/local-path":"hdd"}.',
    )
    disk_class_overrides_file: str | None = Field(
        None, description="YAML file mapping StorageClass names or provisioners to ssd|hdd|unknown."
    )


class LimitsSettings(_Section):
    max_series_per_target: int = Field(2000, gt=0, description="Series cap per etcd member.")
    max_resources_per_target: int = Field(
        64, gt=0, description="Distinct `resource` label values per member before `other`."
    )


class _Common(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        cli_exit_on_error=True,
        extra="forbid",
        validate_default=True,
    )


class DiscoveryFields(BaseModel):
    """Fields shared by `run` and `diagnose`."""

    discovery: Literal["kubernetes", "static"] = Field(
        "kubernetes", description="Where targets come from."
    )
    static: StaticSettings = Field(default_factory=StaticSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    scrape: ScrapeSettings = Field(default_factory=ScrapeSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    shard: int = Field(0, ge=0, description="Shard of this replica (0-based).")
    total_shards: int = Field(1, ge=1, description="Number of shards.")

    @model_validator(mode="after")
    def _check_discovery(self) -> DiscoveryFields:
        problems = []
        if self.discovery == "static" and not self.static.targets_file:
            problems.append("--static.targets-file is required with --discovery=static")
        if self.shard >= self.total_shards:
            problems.append(
                f"--shard={self.shard} must be below --total-shards={self.total_shards}"
            )
        if bool(self.scrape.cert_file) != bool(self.scrape.key_file):
            problems.append("--scrape.cert-file and --scrape.key-file go together")
        if self.scrape.source == "shoot-prometheus":
            problems += _shoot_prometheus_problems(self.discovery, self.scrape.shoot_prometheus_url)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _shoot_prometheus_problems(discovery: str, url: str) -> list[str]:
    problems = []
    if discovery != "kubernetes":
        problems.append("--scrape.source=shoot-prometheus needs --discovery=kubernetes")
    if not url.startswith(("http://", "https://")):
        problems.append(f"--scrape.shoot-prometheus-url must be an http(s) URL, got {url!r}")
    return problems


class RunSettings(_Common, DiscoveryFields):
    """`etcd-latency-exporter run`: the daemon."""

    model_config = SettingsConfigDict(cli_prog_name="etcd-latency-exporter run")

    web: WebSettings = Field(default_factory=WebSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    logs: LogsSettings = Field(default_factory=LogsSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)


class ParseSettings(_Common):
    """`etcd-latency-exporter parse`: offline analysis of saved etcd logs."""

    model_config = SettingsConfigDict(cli_prog_name="etcd-latency-exporter parse")

    files: CliPositionalArg[list[str]] = Field(
        default_factory=lambda: ["-"], description="Log files (.gz too), or - for stdin."
    )
    output: ParseOutput = Field(
        "summary",
        description="summary (a table; p50/p90/p99 estimated within 1 % from a log-bucketed "
        "histogram of bounded size, max exact), json (the summary as JSON), events (JSON Lines, "
        "one object per recognised event).",
    )


class DiagnoseSettings(_Common, DiscoveryFields):
    """`etcd-latency-exporter diagnose`: which etcd is on a slow disk, and why."""

    model_config = SettingsConfigDict(cli_prog_name="etcd-latency-exporter diagnose")

    window: PositiveDuration = Field(
        30.0, description="Time between the two scrapes that give the p99 values."
    )
    since: PositiveDuration = Field(3600.0, description="How much of each log to read.")
    output: Literal["table", "json"] = Field("table", description="Output format.")
    concurrency: int = Field(32, gt=0, description="etcd members examined at once.")
    class_min_members: int = Field(
        CLASS_MEDIAN_MIN_MEMBERS,
        gt=0,
        description="Members with a p99 a StorageClass needs for its median, against which each "
        "member's '× class median' is shown (the chart's prometheusRule.classMedian.minMembers).",
    )
    log: LogSettings = Field(default_factory=LogSettings)
