"""The fleet benchmark: a simulated Gardener seed (API, pod logs, etcd /metrics) and the harness
that runs the exporter and a real Prometheus against it. Entry points: `bench/fleet.py` (the
benchmark) and `bench/fleet_sim.py` (the simulator processes it starts)."""
