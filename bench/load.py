"""End-to-end envelope throughput and latency: Parley against the bare relay, same generator.

    python bench/load.py [--seconds 6] [--pairs 50] [--sizes 300,4096] [--layers memory,redis]
                         [--plot docs/benchmarks-load.png]

Every device holds one socket. A send carries one ciphertext per target device (1 for
1-to-1; 9 for 5-to-5: the recipient's 5 devices and the sender's 4 others), and counts as
done when every target has received and acked it, so each envelope is stored, pushed, acked
and deleted (four frames: send, accepted, deliver, ack). Ciphertexts carry the send time;
latency is send to receipt. Closed loop (each sender waits for its last send to be done)
measures peak throughput; open loop (fixed send rate, no waiting) measures latency at a
given offered load. Loopback only; every phase is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import websockets  # noqa: E402

from protocol.encoding import b64u_decode, b64u_encode  # noqa: E402

FAST = {
    "DEBUG": "0",
    "SECRET_KEY": "bench",
    "LOG_LEVEL": "WARNING",
    "PARLEY_SEND_RATE": "1000000",
    "PARLEY_SEND_BURST": "1000000",
    "PARLEY_QUEUE_LIMIT": "10000000",
}


@dataclass
class Device:
    url: str
    origin: str
    cookie: str
    device_id: str
    account: str


@dataclass
class Sender:
    device: Device
    recipient: str
    targets: list[str]  # device ids


@dataclass
class Result:
    name: str
    sends: int
    deliveries: int
    seconds: float
    latencies_ms: list[float]

    @property
    def send_rate(self) -> float:
        return self.sends / self.seconds

    @property
    def delivery_rate(self) -> float:
        return self.deliveries / self.seconds

    def pct(self, p: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(p / 100 * len(data)))] if data else float("nan")


@dataclass
class Run:
    """Bookkeeping shared by the readers of every socket during one phase."""

    count_from: float
    remaining: dict[str, int] = field(default_factory=dict)
    done: dict[str, asyncio.Event] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    sends: int = 0
    deliveries: int = 0


def stamp(size: int) -> str:
    return b64u_encode(
        time.perf_counter_ns().to_bytes(8, "big") + secrets.token_bytes(max(0, size - 8))
    )


async def open_socket(device: Device):
    return await websockets.connect(
        device.url,
        origin=device.origin,
        additional_headers={"Cookie": device.cookie} if device.cookie else {},
        compression=None,
        max_size=2**22,
        ping_interval=None,
        open_timeout=60,
    )


async def reader(sock, run_ref: list[Run]) -> None:
    async for text in sock:
        frame = json.loads(text)
        if frame["type"] != "deliver":
            continue
        now = time.perf_counter_ns()
        await sock.send(
            json.dumps({"type": "ack", "v": 1, "seqs": [e["seq"] for e in frame["envelopes"]]})
        )
        run = run_ref[0]
        for envelope in frame["envelopes"]:
            if time.monotonic() >= run.count_from:
                run.latencies.append(
                    (now - int.from_bytes(b64u_decode(envelope["ciphertext"])[:8], "big")) / 1e6
                )
                run.deliveries += 1
            left = run.remaining.get(envelope["id"])
            if left is not None:
                run.remaining[envelope["id"]] = left - 1
                if left == 1:
                    run.done.pop(envelope["id"]).set()
                    del run.remaining[envelope["id"]]


async def phase(
    name: str,
    senders: list[Sender],
    sockets: dict[str, object],
    run_ref: list[Run],
    *,
    seconds: float,
    size: int,
    rate_per_sender: float | None,
) -> Result:
    """Closed loop when rate_per_sender is None, else open loop at that rate."""
    run = Run(count_from=time.monotonic() + 1.0)
    run_ref[0] = run
    phase_tag = secrets.token_hex(3)
    stop_at = run.count_from + seconds

    async def loop(sender: Sender) -> None:
        sock = sockets[sender.device.device_id]
        n = 0
        # Open loop: each sender starts at a random phase, so sends do not arrive in bursts.
        next_at = time.monotonic() + (random.random() / rate_per_sender if rate_per_sender else 0.0)
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        while time.monotonic() < stop_at:
            n += 1
            envelope_id = f"{phase_tag}-{sender.device.device_id}-{n}"
            event = asyncio.Event()
            run.remaining[envelope_id] = len(sender.targets)
            run.done[envelope_id] = event
            ciphertext = stamp(size)
            await sock.send(
                json.dumps(
                    {
                        "type": "send",
                        "v": 1,
                        "id": envelope_id,
                        "recipient": sender.recipient,
                        "targets": {t: ciphertext for t in sender.targets},
                    }
                )
            )
            if time.monotonic() >= run.count_from:
                run.sends += 1
            if rate_per_sender is None:
                try:
                    await asyncio.wait_for(event.wait(), 15)
                except TimeoutError:
                    raise RuntimeError(
                        f"{name}: envelope {envelope_id} not delivered within 15 s"
                    ) from None
            else:
                next_at += 1 / rate_per_sender
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    await asyncio.gather(*(loop(s) for s in senders))
    if rate_per_sender is not None and run.done:  # let the tail arrive before the next phase
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in list(run.done.values()))), 15)
        except TimeoutError:
            print(
                f"{name}: {len(run.done)} envelopes still undelivered after 15 s", file=sys.stderr
            )
    return Result(
        name=name,
        sends=run.sends,
        deliveries=run.deliveries,
        seconds=seconds,
        latencies_ms=run.latencies,
    )


async def measure(
    label: str,
    devices: list[Device],
    senders: list[Sender],
    *,
    seconds: float,
    size: int,
    sweep: tuple[float, ...] = (),
    single: Sender | None = None,
) -> list[Result]:
    run_ref: list[Run] = [Run(count_from=0)]
    sockets = {d.device_id: await open_socket(d) for d in devices}
    readers = [asyncio.create_task(reader(s, run_ref)) for s in sockets.values()]
    try:
        results = []
        if single is not None:
            results.append(
                await phase(
                    f"{label} · 1 pair, closed loop",
                    [single],
                    sockets,
                    run_ref,
                    seconds=seconds / 2,
                    size=size,
                    rate_per_sender=None,
                )
            )
        peak = await phase(
            f"{label} · peak, closed loop",
            senders,
            sockets,
            run_ref,
            seconds=seconds,
            size=size,
            rate_per_sender=None,
        )
        results.append(peak)
        for fraction in sweep:
            rate = peak.send_rate * fraction / len(senders)
            results.append(
                await phase(
                    f"{label} · {fraction:.0%} of peak, open loop",
                    senders,
                    sockets,
                    run_ref,
                    seconds=seconds,
                    size=size,
                    rate_per_sender=rate,
                )
            )
        return results
    finally:
        for task in readers:
            task.cancel()
        for sock in sockets.values():
            await sock.close()


# ---------------------------------------------------------------- setups


def start_relay() -> tuple[subprocess.Popen[bytes], int]:
    from tests.support.ports import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "relay_baseline.py"), str(port)],
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return process, port


def relay_world(port: int, pairs: int, fanout: bool) -> tuple[list[Device], list[Sender]]:
    def device(name: str) -> Device:
        return Device(
            url=f"ws://127.0.0.1:{port}/?device={name}",
            origin="http://localhost",
            cookie="",
            device_id=name,
            account=name[:5],
        )

    return _world(device, pairs, fanout)


def parley_world(server, pairs: int, fanout: bool) -> tuple[list[Device], list[Sender]]:
    from client.http import HttpTransport
    from tests.support.actors import CompanionActor, PrimaryActor, link
    from tests.support.softauthn import SoftAuthenticator

    accounts: dict[str, tuple[PrimaryActor, HttpTransport]] = {}

    def device(name: str) -> Device:
        account, index = name[:-1], int(name[-1])
        if account not in accounts:
            transport = HttpTransport(server.url)
            accounts[account] = (
                PrimaryActor(
                    transport, SoftAuthenticator(origin=server.url), username=account
                ).sign_up(),
                transport,
            )
        primary, transport = accounts[account]
        if index == 0:
            return Device(
                url=f"{server.ws_url}/ws/device/",
                origin=server.url,
                cookie=transport.cookie_header(),
                device_id=primary.device_id,
                account=account,
            )
        companion_http = HttpTransport(server.url)
        companion = link(
            primary, CompanionActor(companion_http, name=f"d{index}"), name=f"d{index}"
        )
        return Device(
            url=f"{server.ws_url}/ws/device/",
            origin=server.url,
            cookie=companion_http.cookie_header(),
            device_id=companion.device_id,
            account=account,
        )

    return _world(device, pairs, fanout)


def _world(
    make: Callable[[str], Device], pairs: int, fanout: bool
) -> tuple[list[Device], list[Sender]]:
    """1-to-1: `pairs` single-device senders and receivers. 5-to-5: pairs/5 account pairs of
    5 devices each; every device of the sending account sends (9 targets a send)."""
    tag = secrets.token_hex(2)
    devices: list[Device] = []
    senders: list[Sender] = []
    if not fanout:
        for i in range(pairs):
            a, b = make(f"s{tag}{i:03d}x0"), make(f"r{tag}{i:03d}x0")
            devices += [a, b]
            senders.append(Sender(device=a, recipient=b.account, targets=[b.device_id]))
        return devices, senders
    for g in range(max(1, pairs // 5)):
        alice = [make(f"a{tag}{g:03d}x{k}") for k in range(5)]
        bob = [make(f"b{tag}{g:03d}x{k}") for k in range(5)]
        devices += alice + bob
        for sender in alice:
            targets = [d.device_id for d in bob] + [d.device_id for d in alice if d is not sender]
            senders.append(Sender(device=sender, recipient=bob[0].account, targets=targets))
    return devices, senders


# ---------------------------------------------------------------- report


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5))
    series: dict[str, list[Result]] = {}
    for r in results:
        if "open loop" in r.name or "peak" in r.name:
            series.setdefault(r.name.split(" · ")[0], []).append(r)
    for setup, points in series.items():
        points.sort(key=lambda r: r.delivery_rate)
        axis.plot(
            [p.delivery_rate for p in points], [p.pct(99) for p in points], marker="o", label=setup
        )
    axis.set_xlabel("delivered envelopes per second")
    axis.set_ylabel("p99 latency, send to receipt (ms)")
    axis.set_yscale("log")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title("Parley vs bare websockets relay (1-to-1, loopback, 2 cores)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--sizes", default="300,4096")
    parser.add_argument("--layers", default="memory,redis")
    parser.add_argument("--plot", default="")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    layers = args.layers.split(",")
    sweep = (0.25, 0.5, 0.75)

    from tests.support.redis import start_redis
    from tests.support.server import start_server

    results: list[Result] = []

    relay, port = start_relay()
    try:
        for fanout in (False, True):
            devices, senders = relay_world(port, args.pairs, fanout)
            for size in sizes if not fanout else sizes[:1]:
                label = f"bare relay, {'5-to-5' if fanout else '1-to-1'}, {size} B"
                out = asyncio.run(
                    measure(
                        label,
                        devices,
                        senders,
                        seconds=args.seconds,
                        size=size,
                        sweep=sweep if not fanout and size == sizes[0] else (),
                        single=None if fanout else senders[0],
                    )
                )
                results += out
    finally:
        relay.terminate()
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp)) if "redis" in layers else None
        try:
            for layer in layers:
                workdir = Path(tmp) / layer
                workdir.mkdir()
                server = start_server(
                    workdir, redis_url=redis.url if layer == "redis" else None, extra_env=FAST
                )
                name = f"Parley ({'Redis pub/sub' if layer == 'redis' else 'in-memory'} layer)"
                try:
                    for fanout in (False, True):
                        devices, senders = parley_world(server, args.pairs, fanout)
                        for size in sizes if not fanout else sizes[:1]:
                            label = f"{name}, {'5-to-5' if fanout else '1-to-1'}, {size} B"
                            results += asyncio.run(
                                measure(
                                    label,
                                    devices,
                                    senders,
                                    seconds=args.seconds,
                                    size=size,
                                    sweep=sweep if not fanout and size == sizes[0] else (),
                                    single=None if fanout else senders[0],
                                )
                            )
                finally:
                    server.stop()
        finally:
            if redis:
                redis.stop()
    print(f"{args.pairs} pairs of devices; {args.seconds:.0f} s per phase after 1 s warm-up\n")
    print(table_by_scenario(results))
    if args.plot:
        plot(
            [r for r in results if "1-to-1" in r.name and f"{sizes[0]} B" in r.name],
            Path(args.plot),
        )
        print(f"\nplot: {args.plot}")


def table_by_scenario(results: list[Result]) -> str:
    """Ratios compare each Parley row with the bare relay row of the same scenario."""

    def key(r: Result) -> str:
        setup, phase_name = r.name.split(" · ", 1)
        return f"{setup.split(', ', 1)[1]} · {phase_name}"

    baselines = {key(r): r for r in results if r.name.startswith("bare relay")}
    lines = [
        "| setup | scenario | sends/s | envelopes/s | × relay | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        setup, phase_name = r.name.split(" · ", 1)
        base = baselines.get(key(r))
        ratio = (
            f"{r.delivery_rate / base.delivery_rate:.2f}" if base and base.delivery_rate else "–"
        )
        what, rest = setup.split(", ", 1)
        lines.append(
            f"| {what} | {rest}, {phase_name} | {r.send_rate:,.0f} | {r.delivery_rate:,.0f} | {ratio} | {r.pct(50):.2f} | {r.pct(99):.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
