"""etcd-latency-exporter: finds the etcd on a slow disk."""

__version__ = "0.1.0"
