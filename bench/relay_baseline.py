"""The practical limit for a Python relay on this machine: a bare `websockets` server that
speaks Parley's four frames per envelope (send, accepted, deliver, ack) with no Django, no
storage and no channel layer. Run by bench/load.py; runnable alone:

    python bench/relay_baseline.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys
from urllib.parse import parse_qs, urlsplit

import websockets

connections: dict[str, websockets.ServerConnection] = {}


def deliver_frame(seq: int, envelope_id: str, device: str, ciphertext: str) -> str:
    """The `deliver` of one envelope, as Parley's server writes it (without `sent_at`)."""
    envelope = {
        "seq": seq,
        "id": envelope_id,
        "sender": "",
        "sender_device": device,
        "ciphertext": ciphertext,
    }
    return json.dumps({"type": "deliver", "v": 1, "envelopes": [envelope]})


async def handle(socket: websockets.ServerConnection) -> None:
    device = parse_qs(urlsplit(socket.request.path).query)["device"][0]
    connections[device] = socket
    seq = 0
    try:
        async for text in socket:
            frame = json.loads(text)
            if frame["type"] == "send":
                await socket.send(json.dumps({"type": "accepted", "v": 1, "id": frame["id"]}))
                for target, ciphertext in frame["targets"].items():
                    peer = connections.get(target)
                    if peer is not None:
                        seq += 1
                        await peer.send(deliver_frame(seq, frame["id"], device, ciphertext))
            # "ack" frames need no answer
    finally:
        connections.pop(device, None)


async def main(port: int) -> None:
    async with websockets.serve(handle, "127.0.0.1", port, compression=None, max_size=2**20):
        print(f"relay listening on {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
