"""SSLContexts from TLS material: files, or PEM text from a Kubernetes Secret (blocking).

Used by the scraper (client contexts, cached in exporter.scrape.tls) and by the web server's
web-config (a server certificate given as text).
"""

from __future__ import annotations

import os
import ssl
import tempfile

from exporter.model import TLSConfig


def build_ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    """A client SSLContext for `tls` (blocking: reads files). Raises ssl.SSLError or OSError."""
    if tls.ca_file or tls.ca_data:
        # a private CA replaces the system store: etcd's certificates are never publicly signed.
        # (Loading the system store first cost ~90 ms per context, 1.5 minutes of CPU for a seed's
        # 1,000 shoots.) PROTOCOL_TLS_CLIENT verifies the chain and the host name by default.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if tls.ca_file:
            ctx.load_verify_locations(cafile=tls.ca_file)
        if tls.ca_data:
            ctx.load_verify_locations(cadata=tls.ca_data)
    else:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert_file and tls.key_file:
        ctx.load_cert_chain(certfile=tls.cert_file, keyfile=tls.key_file)
    elif tls.cert_data and tls.key_data:
        load_cert_chain_data(ctx, cert=tls.cert_data, key=tls.key_data)
    return ctx


def load_cert_chain_data(ctx: ssl.SSLContext, *, cert: str, key: str) -> None:
    """Load a PEM certificate chain and key given as text (blocking).

    ssl can only load a chain from files: both go to a private temporary directory (mode 0700,
    files 0600) that is deleted right after loading."""
    with tempfile.TemporaryDirectory(prefix="etcd-latency-tls-") as tmp:
        cert_path = os.path.join(tmp, "tls.crt")
        key_path = os.path.join(tmp, "tls.key")
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(data)
        ctx.load_cert_chain(certfile=cert_path, keyfile=key_path)
