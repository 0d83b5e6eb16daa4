"""End-to-end envelope throughput and latency: Parley against the bare relay, same generator.

    python bench/load.py [--seconds 6] [--pairs 50] [--sizes 300,4096] [--layers memory,redis]
                         [--idle 0,2000,10000] [--floor] [--plot docs/benchmarks-load.png]

Every device holds one socket. A send carries one ciphertext per target device (1 for
1-to-1; 9 for 5-to-5: the recipient's 5 devices and the sender's 4 others), and counts as
done when every target has received and acked it, so each envelope is stored, pushed, acked
and deleted (four frames: send, accepted, deliver, ack). Ciphertexts carry the send time;
latency is send to receipt. Closed loop (each sender waits for its last send to be done)
measures peak throughput; open loop (fixed send rate, no waiting) measures latency at a
given offered load. Loopback only; every phase is bounded in time.

Every phase also reads the server process's CPU time from /proc over its counted window:
server CPU µs per delivered envelope and the share of one core the server used, for the
relay and for Parley alike (a relay short of a core is limited by the generator, which
flatters throughput ratios; CPU per envelope is not). For each of Parley's layers, the "idle
sockets" series holds that many more sockets open on the server (one idle device of an
account nobody writes to) while the pairs run at peak: a cost per message that grows with
the sockets connected shows there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import websockets  # noqa: E402

from bench import pyspy_top  # noqa: E402
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
    group_id: bytes | None = None  # a group send (docs/protocol.md 25.9) with `message`
    message: bytes = b""  # a group message of this device (the server reads its header only)


@dataclass
class Result:
    name: str
    sends: int
    deliveries: int
    seconds: float
    latencies_ms: list[float]
    server_cpu: float  # CPU seconds the server process used over the counted window
    frames: int = 0  # deliver frames that carried the counted envelopes

    @property
    def envelopes_per_frame(self) -> float:
        return self.deliveries / self.frames if self.frames else float("nan")

    @property
    def cpu_us_per_envelope(self) -> float:
        return self.server_cpu * 1e6 / self.deliveries if self.deliveries else float("nan")

    @property
    def core_share(self) -> float:
        return self.server_cpu / self.seconds

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
    frames: int = 0
    sent_at: dict[str, int] = field(default_factory=dict)  # group sends: id -> perf_counter_ns


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


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
        counted = time.monotonic() >= run.count_from
        run.frames += counted
        for envelope in frame["envelopes"]:
            if counted:
                if "group" in envelope:  # one message for every target: its time is kept here
                    sent = run.sent_at.get(envelope["id"], now)
                else:
                    sent = int.from_bytes(b64u_decode(envelope["ciphertext"])[:8], "big")
                run.latencies.append((now - sent) / 1e6)
                run.deliveries += 1
            left = run.remaining.get(envelope["id"])
            if left is not None:
                run.remaining[envelope["id"]] = left - 1
                if left == 1:
                    run.done.pop(envelope["id"]).set()
                    del run.remaining[envelope["id"]]


PROFILE_DIR: Path | None = None  # --profile: py-spy on Parley's server in each closed-loop phase


async def profile(name: str, start: float, seconds: float, pid: int) -> None:
    """py-spy's samples of the server over the counted window, and their top entries."""
    if PROFILE_DIR is None or not name.startswith("Parley") or "open loop" in name:
        return
    await asyncio.sleep(start - time.monotonic())
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    await pyspy_top.record(pid, seconds, PROFILE_DIR / f"{slug}.txt")


async def phase(
    name: str,
    senders: list[Sender],
    sockets: dict[str, object],
    run_ref: list[Run],
    *,
    seconds: float,
    size: int,
    rate_per_sender: float | None,
    server_pid: int,
) -> Result:
    """Closed loop when rate_per_sender is None, else open loop at that rate."""
    run = Run(count_from=time.monotonic() + 1.0)
    run_ref[0] = run
    phase_tag = secrets.token_hex(3)
    stop_at = run.count_from + seconds

    async def server_cpu() -> float:
        """The server's CPU time over the counted window [count_from, stop_at]."""
        await asyncio.sleep(run.count_from - time.monotonic())
        before = cpu_seconds(server_pid)
        await asyncio.sleep(stop_at - time.monotonic())
        return cpu_seconds(server_pid) - before

    window = asyncio.create_task(server_cpu())
    profiler = asyncio.create_task(profile(name, run.count_from, seconds, server_pid))

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
            if sender.group_id is not None:
                run.sent_at[envelope_id] = time.perf_counter_ns()
                frame = {
                    "type": "group_send",
                    "v": 1,
                    "id": envelope_id,
                    "group_id": b64u_encode(sender.group_id),
                    "message": b64u_encode(sender.message),
                    "targets": sender.targets,
                }
            else:
                ciphertext = stamp(size)
                frame = {
                    "type": "send",
                    "v": 1,
                    "id": envelope_id,
                    "recipient": sender.recipient,
                    "targets": {t: ciphertext for t in sender.targets},
                }
            await sock.send(json.dumps(frame))
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
    used = await window
    await profiler
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
        server_cpu=used,
        frames=run.frames,
    )


async def measure(
    label: str,
    devices: list[Device],
    senders: list[Sender],
    *,
    seconds: float,
    size: int,
    server_pid: int,
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
                    server_pid=server_pid,
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
            server_pid=server_pid,
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
                    server_pid=server_pid,
                )
            )
        return results
    finally:
        for task in readers:
            task.cancel()
        for sock in sockets.values():
            await sock.close()


async def measure_with_idle(
    idle: Callable[[int], Device], count: int, label: str, devices: list[Device], **options: object
) -> list[Result]:
    """The peak of `measure` with `count` more sockets held open on the server, idle."""
    limit = asyncio.Semaphore(25)  # Daphne closes handshakes the app has not accepted in 5 s
    held: list = []

    async def one(i: int) -> None:
        async with limit:
            held.append(await open_socket(idle(i)))

    await asyncio.gather(*(one(i) for i in range(count)))
    await asyncio.sleep(2)  # the connects' own work done before the counted window
    try:
        return await measure(label, devices, **options)  # type: ignore[arg-type]
    finally:
        for sock in held:
            sock.transport.abort()


def series(
    name: str,
    pid: int,
    world: Callable[[bool], tuple[list[Device], list[Sender]]],
    idle: Callable[[int], Device] | None,
    *,
    seconds: float,
    sizes: list[int],
    idle_counts: list[int],
) -> list[Result]:
    """Every scenario of one setup: 1-to-1 at each size (the first with a single pair and the
    open-loop sweep), 5-to-5, and (given `idle`) the 1-to-1 peak with each count of idle
    sockets."""
    sweep = (0.25, 0.5, 0.75)
    results: list[Result] = []
    for fanout in (False, True):
        devices, senders = world(fanout)
        for size in sizes if not fanout else sizes[:1]:
            label = f"{name}, {'5-to-5' if fanout else '1-to-1'}, {size} B"
            first = not fanout and size == sizes[0]
            results += asyncio.run(
                measure(
                    label,
                    devices,
                    senders,
                    seconds=seconds,
                    size=size,
                    server_pid=pid,
                    sweep=sweep if first else (),
                    single=None if fanout else senders[0],
                )
            )
    if idle is None:
        return results
    devices, senders = world(False)
    for count in (c for c in idle_counts if c > 0):
        label = f"{name}, 1-to-1, {sizes[0]} B, {count:,} idle sockets"
        results += asyncio.run(
            measure_with_idle(
                idle,
                count,
                label,
                devices,
                senders=senders,
                seconds=seconds,
                size=sizes[0],
                server_pid=pid,
            )
        )
    return results


def group_series(name: str, pid: int, server, members: int, *, seconds: float, size: int):
    """A group of `members` accounts with one device each, every member sending to the
    group: one stored message and `members - 1` deliveries a send (25.9)."""
    devices, senders = group_world(server, members, size)
    label = f"{name}, group of {members}, {size} B"
    return asyncio.run(measure(label, devices, senders, seconds=seconds, size=size, server_pid=pid))


# ---------------------------------------------------------------- setups


def start_relay(*, daphne: bool = False) -> tuple[subprocess.Popen[bytes], int]:
    """The bare relay (`websockets`), or with `daphne` the same relay as an ASGI application
    served as Parley is (bench/daphne_relay.py): the floor of Parley's own stack."""
    from tests.support.ports import free_port, wait_for_port

    port = free_port()
    if daphne:
        command = ["-m", "web.serve", "-b", "127.0.0.1", "-p", str(port)]
        command += ["bench.daphne_relay:application"]
    else:
        command = [str(ROOT / "bench" / "relay_baseline.py"), str(port)]
    process = subprocess.Popen(
        [sys.executable, *command], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_port(port)
    return process, port


def relay_device(port: int, name: str) -> Device:
    return Device(
        url=f"ws://127.0.0.1:{port}/?device={name}",
        origin="http://localhost",
        cookie="",
        device_id=name,
        account=name[:5],
    )


def relay_world(port: int, pairs: int, fanout: bool) -> tuple[list[Device], list[Sender]]:
    return _world(lambda name: relay_device(port, name), pairs, fanout)


def idle_device(server) -> Device:
    """The device of an account nobody writes to, whose socket the idle series opens again
    and again (as a browser's tabs would)."""
    from client.http import HttpTransport
    from tests.support.actors import PrimaryActor
    from tests.support.softauthn import SoftAuthenticator

    transport = HttpTransport(server.url)
    primary = PrimaryActor(
        transport, SoftAuthenticator(origin=server.url), username=f"idle{secrets.token_hex(3)}"
    ).sign_up()
    return Device(
        url=f"{server.ws_url}/ws/device/",
        origin=server.url,
        cookie=transport.cookie_header(),
        device_id=primary.device_id,
        account=primary.username,
    )


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


def group_world(server, members: int, size: int) -> tuple[list[Device], list[Sender]]:
    """`members` accounts with one device each in one group whose create entry the first
    one's device signed; each sender's message is a real group message of its device, sent
    again and again (the server checks its header, not its iteration)."""
    from client.http import HttpTransport
    from protocol.groups import EntryKind, entry_hash, sign_entry
    from protocol.rng import system_rng
    from protocol.senderkeys import encrypt_group, new_sender_key
    from tests.support.actors import PrimaryActor
    from tests.support.softauthn import SoftAuthenticator

    tag = secrets.token_hex(2)
    people = [
        PrimaryActor(
            HttpTransport(server.url),
            SoftAuthenticator(origin=server.url),
            username=f"g{tag}{i:03d}",
        ).sign_up()
        for i in range(members)
    ]
    group_id = system_rng(16)
    entry = sign_entry(
        group_id=group_id,
        seq=0,
        previous=bytes(32),
        kind=EntryKind.CREATE,
        actor=people[0].username,
        identity=people[0].keys.identity,
        timestamp=int(time.time() * 1000),
        accounts=[p.username for p in people],
        name="bench",
    )
    status, body = people[0].transport.post(
        f"/api/groups/{b64u_encode(group_id)}/entries", {"seq": 0, "entry": b64u_encode(entry)}
    )
    assert status == 201, body
    head = {"head_seq": 0, "head_hash": entry_hash(entry)}
    devices = [
        Device(
            url=f"{server.ws_url}/ws/device/",
            origin=server.url,
            cookie=p.transport.cookie_header(),
            device_id=p.device_id,
            account=p.username,
        )
        for p in people
    ]
    senders = []
    for person, device in zip(people, devices, strict=True):
        key = new_sender_key(
            system_rng, group_id=group_id, sender=person.username, device=device.device_id
        )
        _, message = encrypt_group(key, secrets.token_bytes(size), rng=system_rng, **head)
        targets = [d.device_id for d in devices if d is not device]
        senders.append(Sender(device, "", targets, group_id=group_id, message=message))
    return devices, senders


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
    parser.add_argument("--idle", default="0,2000,10000")
    parser.add_argument("--plot", default="")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also the relay as a bare ASGI app on Daphne (bench/daphne_relay.py)",
    )
    parser.add_argument(
        "--group",
        type=int,
        default=0,
        help="also Parley's group sends: a group of N accounts with one device each",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="a directory: py-spy profiles of Parley's server in each closed-loop phase (slows it)",
    )
    args = parser.parse_args()
    if args.profile:
        global PROFILE_DIR
        PROFILE_DIR = Path(args.profile)
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    layers = args.layers.split(",")
    options = {
        "seconds": args.seconds,
        "sizes": sizes,
        "idle_counts": [int(c) for c in args.idle.split(",")],
    }
    # the idle sockets: the bench and the servers it starts (which inherit it) need the fds
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    from tests.support.redis import start_redis
    from tests.support.server import start_server

    results: list[Result] = []
    relay, port = start_relay()
    try:
        results += series(
            "bare relay",
            relay.pid,
            partial(relay_world, port, args.pairs),
            None,  # the idle series is Parley's, one per layer
            **options,
        )
    finally:
        relay.terminate()
    if args.floor:
        relay, port = start_relay(daphne=True)
        try:
            results += series(
                "relay on Daphne",
                relay.pid,
                partial(relay_world, port, args.pairs),
                None,
                **options,
            )
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
                name = f"Parley ({'Redis pub/sub' if layer == 'redis' else 'local'} layer)"
                assert server.process is not None
                try:
                    idler = idle_device(server)
                    results += series(
                        name,
                        server.process.pid,
                        partial(parley_world, server, args.pairs),
                        lambda i, idler=idler: idler,
                        **options,
                    )
                    if args.group:
                        results += group_series(
                            name,
                            server.process.pid,
                            server,
                            args.group,
                            seconds=args.seconds,
                            size=sizes[0],
                        )
                except BaseException:
                    lines = server.log().splitlines()
                    quiet = [x for x in lines if "WSCONNECT" not in x and "WSDISCONNECT" not in x]
                    print("\n".join(quiet)[-8000:], file=sys.stderr)
                    raise
                finally:
                    server.stop()
        finally:
            if redis:
                redis.stop()
    print(f"{args.pairs} pairs of devices; {args.seconds:.0f} s per phase after 1 s warm-up\n")
    print(table_by_scenario(results))
    if args.plot:
        plot(
            [
                r
                for r in results
                if "1-to-1" in r.name and f"{sizes[0]} B" in r.name and "idle" not in r.name
            ],
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
        "| setup | scenario | sends/s | envelopes/s | × relay | server CPU µs / envelope | relay's ÷ this | server's share of a core | envelopes / deliver frame | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        setup, phase_name = r.name.split(" · ", 1)
        base = baselines.get(key(r))
        ratio = (
            f"{r.delivery_rate / base.delivery_rate:.2f}" if base and base.delivery_rate else "–"
        )
        cpu_ratio = (
            f"{base.cpu_us_per_envelope / r.cpu_us_per_envelope:.2f}"
            if base and r.deliveries and base.deliveries
            else "–"
        )
        what, rest = setup.split(", ", 1)
        lines.append(
            f"| {what} | {rest}, {phase_name} | {r.send_rate:,.0f} | {r.delivery_rate:,.0f} | {ratio} | {r.cpu_us_per_envelope:,.0f} | {cpu_ratio} | {r.core_share:.2f} | {r.envelopes_per_frame:.2f} | {r.pct(50):.2f} | {r.pct(99):.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
