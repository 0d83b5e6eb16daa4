"""Account state sync end to end: a change on one device, applied by another device.

Run alone: .venv/bin/python bench/sync_latency.py [--mutations 200] [--layer memory|redis]

A live local server (Daphne, SQLite, the in-memory or Redis pub/sub channel layer) and two
devices of one account, each the Python client's sync machine adapter (client.sync.SyncDriver)
over its own HTTP session. Device A adds a contact: its machine encrypts the patch and POSTs
it (compare-and-swap); the server commits and rings `state_changed` on device B's socket; B's
machine reads the log after its version, checks and applies the entry. Timed from A's call to
the moment B's state holds the new contact, one mutation at a time (closed loop), after 10
warm-up mutations. Target: p50 under 50 ms on loopback (docs/benchmarks.md). Also the CPU
time per mutation of the server process (from /proc) and of this process (both devices), and
the load average, since on a shared machine waiting for a core is part of every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import websockets  # noqa: E402

from client.http import HttpTransport  # noqa: E402
from client.sync import SyncDriver  # noqa: E402
from protocol.engine import SyncState  # noqa: E402

WARM_UP = 10
# As a deployment runs (bench/load.py's settings): no DEBUG (which re-scans the static files
# for the import map on every request and records every query), and no state write limit.
SERVER_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench",
    "LOG_LEVEL": "WARNING",
    "PARLEY_RATE_STATE": "100000/60",
}


def now_ms() -> int:
    return int(time.time() * 1000)


def contact(i: int) -> tuple[str, tuple[str, ...], dict[str, object]]:
    value = {"account_key": "A" * 43, "added_at": now_ms(), "nickname": ""}
    return ("contacts", (f"friend{i:05d}",), value)


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) a process has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(
    url: str, ws_url: str, mutations: int, server_pid: int
) -> tuple[list[float], list[float], float, float]:
    from tests.support.actors import CompanionActor, PrimaryActor, link
    from tests.support.softauthn import SoftAuthenticator

    a_http, b_http = HttpTransport(url), HttpTransport(url)
    primary = PrimaryActor(a_http, SoftAuthenticator(origin=url), username="benchsync").sign_up()
    companion = link(primary, CompanionActor(b_http, name="Laptop"), name="Laptop")
    a = SyncDriver(a_http, SyncState("benchsync", primary.device_id), clock=now_ms)
    b = SyncDriver(b_http, SyncState("benchsync", companion.device_id), clock=now_ms)
    # the key as the pairwise session would carry it (not what is measured)
    b.key_received(primary.device_id, a.share_key().shares[-1])
    b.fetch()

    totals: list[float] = []
    writes: list[float] = []
    seen: dict[str, asyncio.Event] = {}
    socket = await websockets.connect(
        f"{ws_url}/ws/device/",
        origin=url,
        additional_headers={"Cookie": b_http.cookie_header()},
        compression=None,
        ping_interval=None,
    )

    async def device_b() -> None:
        async for text in socket:
            frame = json.loads(text)
            if frame.get("type") != "state_changed":
                continue
            b.fetch(frame["version"])
            for index in b.state.account.collection("contacts"):
                event = seen.get(index[0])
                if event is not None:
                    event.set()

    reader = asyncio.create_task(device_b())
    server_cpu = client_cpu = 0.0
    try:
        for i in range(WARM_UP + mutations):
            if i == WARM_UP:
                server_cpu, client_cpu = process_cpu(server_pid), time.process_time()
            name = contact(i)[1][0]
            seen[name] = asyncio.Event()
            start = time.perf_counter()
            # device A runs in a thread, so device B's socket is read meanwhile
            await asyncio.to_thread(a.mutate, contact(i))
            wrote = time.perf_counter()
            await asyncio.wait_for(seen[name].wait(), 10)
            done = time.perf_counter()
            del seen[name]
            if i >= WARM_UP:
                totals.append((done - start) * 1000)
                writes.append((wrote - start) * 1000)
            assert a.state.refused is None and b.state.refused is None
        server_cpu = process_cpu(server_pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        reader.cancel()
        await socket.close()
    return totals, writes, server_cpu * 1000 / mutations, client_cpu * 1000 / mutations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutations", type=int, default=200)
    parser.add_argument("--layer", choices=("memory", "redis"), default="memory")
    args = parser.parse_args()

    from tests.support.redis import start_redis
    from tests.support.server import start_server

    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp)) if args.layer == "redis" else None
        server = start_server(
            Path(tmp),
            redis_url=redis.url if redis else None,
            extra_env=SERVER_ENV,
        )
        load_before = os.getloadavg()[0]
        try:
            totals, writes, server_cpu, client_cpu = asyncio.run(
                measure(server.url, server.ws_url, args.mutations, server.process.pid)
            )
        finally:
            server.stop()
            if redis:
                redis.stop()
    print(f"{args.mutations} mutations, {args.layer} channel layer, after {WARM_UP} warm-up")
    print("                                   p50      p95      p99      max     mean")
    for label, values in (("A's write (patch POSTed, 201)", writes), ("visible on B", totals)):
        row = [pct(values, 50), pct(values, 95), pct(values, 99), max(values)]
        row.append(statistics.fmean(values))
        print(f"{label:32} " + " ".join(f"{v:6.1f} ms" for v in row))
    print(
        f"CPU per mutation: server {server_cpu:.1f} ms, both devices {client_cpu:.1f} ms; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        f"({os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
