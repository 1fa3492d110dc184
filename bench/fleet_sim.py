"""The fleet simulator's processes (started by bench/fleet.py; runnable alone for debugging).

    python bench/fleet_sim.py api --shoots 1000 --kubeconfig /tmp/kc [--log-rate 2]
    python bench/fleet_sim.py endpoints --shoots 1000 --port 23790 [--slice 0/2]

`api` serves the seed's Kubernetes API (pods, PVCs, PVs, StorageClasses, Etcds, pod logs) and
writes every member's log; `endpoints` serves the members' etcd /metrics on their pod IPs (one
slice of the members when several processes share the work). Each prints one JSON line when
ready and runs until SIGTERM. Exit code 3: the port is taken on one of the addresses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The repository root first: this script's own directory (bench/, first on the path) holds a
# `tests` package of its own, which must not hide the repository's.
sys.path.insert(0, str(REPO))

from bench.fleetbench.seed import fleet  # noqa: E402

EXIT_PORT_IN_USE = 3


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _until_term() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _ready(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def run_api(args: argparse.Namespace) -> int:
    """The emulated API server with the fleet and its log writer."""
    from bench.fleetbench.api import build, forget_old_text, write_logs

    members = fleet(args.shoots, seed=args.seed)
    emu = build(members)
    await emu.start(port=args.port)
    emu.write_kubeconfig(Path(args.kubeconfig))
    tasks = [
        asyncio.create_task(write_logs(emu, members, rate=args.log_rate, seed=args.seed)),
        asyncio.create_task(forget_old_text(emu, members)),
    ]
    _ready(url=emu.url, members=len(members))
    try:
        await _until_term()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await emu.stop()
    return 0


async def run_endpoints(args: argparse.Namespace) -> int:
    """The etcd /metrics endpoints of one slice of the fleet."""
    from bench.fleetbench.endpoints import PortInUse, serve
    from bench.fleetbench.payload import Payloads

    index, count = (int(x) for x in args.slice.split("/"))
    members = [m for m in fleet(args.shoots, seed=args.seed) if m.index % count == index]
    try:
        servers, served = await serve(members, port=args.port, payloads=Payloads())
    except PortInUse as err:
        print(str(err), file=sys.stderr)
        return EXIT_PORT_IN_USE
    _ready(listening=len(servers), port=args.port)
    try:
        await _until_term()
    finally:
        for server in servers:
            server.close()
    print(json.dumps({"served": dict(served)}), file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one simulator process."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    api = sub.add_parser("api", help="the Kubernetes API with the fleet and its logs")
    api.add_argument("--kubeconfig", required=True)
    api.add_argument("--port", type=int, default=0)
    api.add_argument("--log-rate", type=float, default=2.0, help="lines per member per second")
    ends = sub.add_parser("endpoints", help="the members' etcd /metrics")
    ends.add_argument("--port", type=int, required=True)
    ends.add_argument("--slice", default="0/1", help="INDEX/COUNT of the members to serve")
    for p in (api, ends):
        p.add_argument("--shoots", type=int, required=True)
        p.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    _raise_fd_limit()
    run = run_api if args.command == "api" else run_endpoints
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
