"""An in-process Kubernetes API emulator for tests: the wire protocol of the calls we make.

`KubeEmulator` (server.py) serves list/watch/get of pods, PVCs, PVs, StorageClasses, Secrets
and druid Etcd resources, and pod logs with follow; tests drive it through Python methods
(append log lines, restart containers, delete pods, cut streams, deny permissions) or the
`/_emu/...` HTTP hooks when it runs in another process (`python -m tests.support.kube.server`).
"""
