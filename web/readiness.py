"""Whether this node can take devices now: what `/readyz` tells the proxy's health checks.

Cheap on purpose (it is asked every few seconds by every proxy): no session, no write, one
`SELECT 1`, and with the Redis layer one PUBLISH to a channel nobody listens on.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import DatabaseError, connection

from web import drain
from web.channel_layer import LocalChannelLayer

Readiness = Literal["ready", "draining", "database_unavailable", "channel_layer_unavailable"]

# A layer that has not answered within this long counts as away (redis-py would retry longer).
LAYER_SECONDS = 2.0
PROBE_CHANNEL = "parley.readiness"


async def node_readiness() -> Readiness:
    """The first reason this node cannot take devices, or "ready". On the event loop: a
    layer that does not answer holds no thread for its seconds, only this check."""
    if drain.node.begun:
        return "draining"
    if not await database_sync_to_async(database_answers)():
        return "database_unavailable"
    if not await channel_layer_answers():
        return "channel_layer_unavailable"
    return "ready"


def database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


async def channel_layer_answers() -> bool:
    """A round trip to the layer's server; a layer inside this process answers while it runs."""
    layer = get_channel_layer()
    if layer is None or isinstance(layer, LocalChannelLayer | InMemoryChannelLayer):
        return True
    try:
        async with asyncio.timeout(LAYER_SECONDS):
            await layer.send(PROBE_CHANNEL, {"type": "readiness.probe"})
    except Exception:  # refused, reset, timed out: whatever redis-py raises, the layer is away
        return False
    return True
