"""The floor of the stack Parley is built on: bench/relay_baseline.py's relay (Parley's four
frames per envelope, no Django, no storage, no channel layer) as a bare ASGI application,
served the way Parley is (`python -m web.serve`: Daphne, Twisted, autobahn). What Daphne
costs per frame shows here; what Parley adds on top is the gap between this and Parley.
Run by bench/load.py (`--floor`); runnable alone:

    python -m web.serve -b 127.0.0.1 -p PORT bench.daphne_relay:application
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from bench.relay_baseline import deliver_frame

Send = Callable[[dict[str, Any]], Awaitable[None]]

connections: dict[str, Send] = {}


async def application(scope: dict[str, Any], receive: Any, send: Send) -> None:
    if scope["type"] != "websocket":
        await receive()
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    device = parse_qs(scope["query_string"].decode())["device"][0]
    seq = 0
    try:
        while True:
            event = await receive()
            if event["type"] == "websocket.connect":
                await send({"type": "websocket.accept"})
                connections[device] = send
            elif event["type"] == "websocket.disconnect":
                return
            elif event["type"] == "websocket.receive":
                frame = json.loads(event["text"])
                if frame["type"] != "send":
                    continue  # "ack" frames need no answer
                accepted = json.dumps({"type": "accepted", "v": 1, "id": frame["id"]})
                await send({"type": "websocket.send", "text": accepted})
                for target, ciphertext in frame["targets"].items():
                    peer = connections.get(target)
                    if peer is None:
                        continue
                    seq += 1
                    deliver = deliver_frame(seq, frame["id"], device, ciphertext)
                    await peer({"type": "websocket.send", "text": deliver})
    finally:
        if connections.get(device) is send:
            del connections[device]
