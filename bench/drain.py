"""How long an offline device takes to drain 10,000 queued envelopes on reconnect.

    python bench/drain.py [--envelopes 10000] [--size 300]

Loopback only; the queue is filled through the real send path (300-byte ciphertexts), then
the device connects and acks every batch; the clock runs from connect to the last envelope.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from client.http import HttpTransport  # noqa: E402
from tests.support.actors import PrimaryActor  # noqa: E402
from tests.support.server import start_server  # noqa: E402
from tests.support.softauthn import SoftAuthenticator  # noqa: E402
from tests.support.wire import DeviceSocket  # noqa: E402

FAST = {
    "DEBUG": "0",
    "SECRET_KEY": "bench",
    "LOG_LEVEL": "WARNING",
    "PARLEY_SEND_RATE": "1000000",
    "PARLEY_SEND_BURST": "1000000",
    "PARLEY_QUEUE_LIMIT": "1000000",
}


async def fill_and_drain(server, envelopes: int, size: int) -> tuple[float, float, int]:
    people = []
    for name in ("drainsender", "drainer"):
        transport = HttpTransport(server.url)
        people.append(
            (
                PrimaryActor(
                    transport, SoftAuthenticator(origin=server.url), username=name
                ).sign_up(),
                transport,
            )
        )
    (_, sender_http), (receiver, receiver_http) = people
    sender = await DeviceSocket(
        ws_url=server.ws_url, origin=server.url, cookie=sender_http.cookie_header()
    ).connect()
    started = time.perf_counter()
    window = 200
    for n in range(envelopes):
        await sender.send(
            f"d{n:05d}", receiver.username, {receiver.device_id: secrets.token_bytes(size)}
        )
        if n >= window:
            await sender.next("accepted", within=30)
    for _ in range(min(window, envelopes)):
        await sender.next("accepted", within=30)
    fill = time.perf_counter() - started
    await sender.close()
    started = time.perf_counter()
    device = await DeviceSocket(
        ws_url=server.ws_url, origin=server.url, cookie=receiver_http.cookie_header()
    ).connect()
    while len(device.received) < envelopes:
        await device.next("deliver", within=30)
    drain = time.perf_counter() - started
    ids = [e["id"] for e in device.received]
    in_order = ids == [f"d{n:05d}" for n in range(envelopes)]
    await device.close()
    return fill, drain, int(in_order)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envelopes", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), redis_url=None, extra_env=FAST)
        try:
            fill, drain, in_order = asyncio.run(fill_and_drain(server, args.envelopes, args.size))
        finally:
            server.stop()
    print(
        f"queued {args.envelopes} envelopes in {fill:.2f} s ({args.envelopes / fill:,.0f}/s, 200 in flight)"
    )
    print(
        f"drained {args.envelopes} envelopes in {drain:.2f} s ({args.envelopes / drain:,.0f}/s), in order: {bool(in_order)}"
    )


if __name__ == "__main__":
    main()
