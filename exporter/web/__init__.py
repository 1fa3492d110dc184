"""HTTP stage: /metrics, /healthz, /readyz, the status page."""
