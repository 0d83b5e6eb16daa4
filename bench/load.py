"""End-to-end envelope throughput and latency: Parley against the bare relay, same generator.

    python bench/load.py [--seconds 8] [--pairs 50] [--size 300] [--layer memory|redis|both]

Each closed-loop pair is one sender device and one receiver device (1-to-1: each send has
exactly one ciphertext); the sender sends its next envelope when the receiver has acked the
previous one, so every envelope is stored, pushed, acked and deleted (four frames:
send, accepted, deliver, ack). The ciphertext carries the send time; latency is send to
receipt. Loopback only, bounded in time. Results print as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import websockets  # noqa: E402

from protocol.encoding import b64u_decode, b64u_encode  # noqa: E402


@dataclass
class Result:
    name: str
    envelopes: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.envelopes / self.seconds

    def pct(self, p: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(p / 100 * len(data)))] if data else float("nan")


@dataclass
class Endpoint:
    url: str
    origin: str
    cookie: str
    device_id: str
    recipient: str


def ciphertext(size: int) -> str:
    return b64u_encode(
        time.perf_counter_ns().to_bytes(8, "big") + secrets.token_bytes(max(0, size - 8))
    )


async def run_pairs(
    name: str, pairs: list[tuple[Endpoint, Endpoint]], *, seconds: float, size: int
) -> Result:
    """Closed loop per pair: send, wait for `accepted` and for the receiver's delivery+ack."""
    latencies: list[float] = []
    counted = 0
    warmup_end = time.monotonic() + 1.0
    stop_at = warmup_end + seconds

    def connect(e: Endpoint):
        return websockets.connect(
            e.url,
            origin=e.origin,
            additional_headers={"Cookie": e.cookie} if e.cookie else {},
            compression=None,
            max_size=2**20,
        )

    async def pair(sender: Endpoint, receiver: Endpoint) -> None:
        nonlocal counted
        delivered: asyncio.Queue[None] = asyncio.Queue()
        async with connect(sender) as tx, connect(receiver) as rx:

            async def receive() -> None:
                nonlocal counted
                async for text in rx:
                    frame = json.loads(text)
                    if frame["type"] != "deliver":
                        continue
                    now = time.perf_counter_ns()
                    await rx.send(
                        json.dumps(
                            {"type": "ack", "v": 1, "seqs": [e["seq"] for e in frame["envelopes"]]}
                        )
                    )
                    for envelope in frame["envelopes"]:
                        if time.monotonic() >= warmup_end:
                            sent = int.from_bytes(b64u_decode(envelope["ciphertext"])[:8], "big")
                            latencies.append((now - sent) / 1e6)
                            counted += 1
                        delivered.put_nowait(None)

            reader = asyncio.create_task(receive())
            n = 0
            try:
                while time.monotonic() < stop_at:
                    n += 1
                    frame = {
                        "type": "send",
                        "v": 1,
                        "id": f"{sender.device_id[:8]}-{n}",
                        "recipient": sender.recipient,
                        "targets": {receiver.device_id: ciphertext(size)},
                    }
                    await tx.send(json.dumps(frame))
                    answer = json.loads(await asyncio.wait_for(tx.recv(), 10))
                    if answer["type"] != "accepted":
                        raise RuntimeError(f"{name}: {answer}")
                    await asyncio.wait_for(delivered.get(), 10)
            finally:
                reader.cancel()

    await asyncio.gather(*(pair(s, r) for s, r in pairs))
    return Result(name=name, envelopes=counted, seconds=seconds, latencies_ms=latencies)


def start_relay() -> tuple[subprocess.Popen[bytes], int]:
    from tests.support.ports import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "relay_baseline.py"), str(port)],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return process, port


def relay_pairs(port: int, n: int) -> list[tuple[Endpoint, Endpoint]]:
    def endpoint(device: str) -> Endpoint:
        return Endpoint(
            url=f"ws://127.0.0.1:{port}/?device={device}",
            origin="http://localhost",
            cookie="",
            device_id=device,
            recipient="peer",
        )

    return [
        (endpoint(f"s{i:04d}xxxxxxxxxxxx"), endpoint(f"r{i:04d}xxxxxxxxxxxx")) for i in range(n)
    ]


def parley_pairs(server, n: int) -> list[tuple[Endpoint, Endpoint]]:
    """Sign up 2n single-device accounts over HTTP (software passkey), pair them up."""
    from client.http import HttpTransport
    from tests.support.actors import PrimaryActor
    from tests.support.softauthn import SoftAuthenticator

    def account(name: str) -> Endpoint:
        transport = HttpTransport(server.url)
        actor = PrimaryActor(
            transport, SoftAuthenticator(origin=server.url), username=name
        ).sign_up()
        return Endpoint(
            url=f"{server.ws_url}/ws/device/",
            origin=server.url,
            cookie=transport.cookie_header(),
            device_id=actor.device_id,
            recipient="",
        )

    pairs = []
    tag = secrets.token_hex(3)
    for i in range(n):
        sender, receiver = account(f"s{tag}{i:04d}"), account(f"r{tag}{i:04d}")
        sender.recipient = f"r{tag}{i:04d}"
        pairs.append((sender, receiver))
    return pairs


def table(results: list[Result], baseline: Result) -> str:
    lines = ["| setup | envelopes/s | × relay | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(
            f"| {r.name} | {r.rate:,.0f} | {r.rate / baseline.rate:.2f} | {r.pct(50):.2f} | {r.pct(99):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--size", type=int, default=300)
    parser.add_argument("--layer", choices=["memory", "redis", "both"], default="both")
    args = parser.parse_args()

    from tests.support.redis import start_redis
    from tests.support.server import start_server

    results = []
    relay, port = start_relay()
    try:
        baseline = asyncio.run(
            run_pairs(
                "bare websockets relay",
                relay_pairs(port, args.pairs),
                seconds=args.seconds,
                size=args.size,
            )
        )
    finally:
        relay.terminate()
    results.append(baseline)
    layers = ["memory", "redis"] if args.layer == "both" else [args.layer]
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp)) if "redis" in layers else None
        try:
            for layer in layers:
                workdir = Path(tmp) / layer
                workdir.mkdir()
                server = start_server(
                    workdir,
                    redis_url=redis.url if layer == "redis" else None,
                    extra_env={
                        "DEBUG": "0",
                        "SECRET_KEY": "bench",
                        "LOG_LEVEL": "WARNING",
                        "PARLEY_SEND_RATE": "100000",
                        "PARLEY_SEND_BURST": "100000",
                    },
                )
                try:
                    pairs = parley_pairs(server, args.pairs)
                    results.append(
                        asyncio.run(
                            run_pairs(
                                f"Parley, Daphne, SQLite, {'Redis pub/sub' if layer == 'redis' else 'in-memory'} layer",
                                pairs,
                                seconds=args.seconds,
                                size=args.size,
                            )
                        )
                    )
                finally:
                    server.stop()
        finally:
            if redis:
                redis.stop()
    print(
        f"{args.pairs} closed-loop pairs, {args.size}-byte ciphertexts, {args.seconds:.0f} s each after 1 s warm-up\n"
    )
    print(table(results, baseline))


if __name__ == "__main__":
    main()
