"""Memory and CPU of idle device sockets held by one Daphne process.

    python bench/idle_sockets.py [--steps 1000,5000,15000] [--idle-seconds 10] [--ping-seconds 25]
                                 [--profile DIR]

One account's device opens the sockets (a browser's tabs, many times over); each socket
then does what an idle browser tab does: a `ping` every 25 s (static/js/app/socket.js), at
a phase of its own, and reads what comes. After each step the bench waits, then reads the
server's resident memory (VmRSS) and its CPU time over an idle window from /proc. Loopback only. The soft file-descriptor limit is raised to the hard
limit (this sandbox allows 20,000) for the bench and the server it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import websockets  # noqa: E402

from bench import pyspy_top  # noqa: E402
from client.http import HttpTransport  # noqa: E402
from tests.support.actors import PrimaryActor  # noqa: E402
from tests.support.server import start_server  # noqa: E402
from tests.support.softauthn import SoftAuthenticator  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def idle_tab(sock, ping_seconds: float) -> None:
    """Read everything; ping every `ping_seconds` (0: never), starting at a random phase."""

    async def read() -> None:
        async for _ in sock:
            pass

    reader = asyncio.create_task(read())
    try:
        if ping_seconds > 0:
            await asyncio.sleep(random.uniform(0, ping_seconds))
            while True:
                await sock.send(json.dumps({"type": "ping", "v": 1}))
                await asyncio.sleep(ping_seconds)
        await reader
    except websockets.ConnectionClosed:
        pass
    finally:
        reader.cancel()


async def open_sockets(
    server, cookie: str, count: int, sockets: list, tabs: list, ping_seconds: float
) -> float:
    limit = asyncio.Semaphore(25)  # Daphne closes handshakes the app has not accepted in 5 s

    async def one() -> None:
        async with limit:
            sock = await websockets.connect(
                f"{server.ws_url}/ws/device/",
                origin=server.url,
                additional_headers={"Cookie": cookie},
                compression=None,
                ping_interval=None,
                open_timeout=60,
            )
            sockets.append(sock)
            tabs.append(asyncio.create_task(idle_tab(sock, ping_seconds)))

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - started


async def run(
    server, steps: list[int], idle_seconds: float, ping_seconds: float, profile: Path | None
) -> list[tuple[int, int, float, float]]:
    transport = HttpTransport(server.url)
    PrimaryActor(transport, SoftAuthenticator(origin=server.url), username="idler").sign_up()
    cookie = transport.cookie_header()
    pid = server.process.pid
    sockets: list = []
    tabs: list = []
    await open_sockets(server, cookie, 1, sockets, tabs, ping_seconds)
    await asyncio.sleep(2)
    base_rss = rss_kib(pid)
    rows = []
    for target in steps:
        seconds = await open_sockets(
            server, cookie, target - len(sockets), sockets, tabs, ping_seconds
        )
        await asyncio.sleep(3)
        spy = (
            asyncio.create_task(pyspy_top.record(pid, idle_seconds, profile / f"idle-{target}.txt"))
            if profile
            else None
        )
        before = cpu_seconds(pid)
        await asyncio.sleep(idle_seconds)
        idle = (cpu_seconds(pid) - before) / idle_seconds * 100
        per_socket = (rss_kib(pid) - base_rss) / (len(sockets) - 1)
        rows.append((len(sockets), rss_kib(pid), per_socket, idle))
        if spy:
            await spy
        print(
            f"{len(sockets):>6} sockets: RSS {rss_kib(pid) / 1024:,.0f} MiB, {per_socket:.1f} KiB per socket, idle CPU {idle:.1f}% of a core (opened in {seconds:.1f} s)",
            flush=True,
        )
    for tab in tabs:
        tab.cancel()
    for sock in sockets:
        sock.transport.abort()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="1000,5000,15000")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--ping-seconds", type=float, default=25.0)
    parser.add_argument(
        "--profile",
        type=Path,
        help="a directory: a py-spy profile of the server over each idle window (counts in its CPU)",
    )
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    steps = [int(s) for s in args.steps.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(
            Path(tmp),
            redis_url=None,
            extra_env={"DEBUG": "0", "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"},
        )
        try:
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
            asyncio.run(run(server, steps, args.idle_seconds, args.ping_seconds, args.profile))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
