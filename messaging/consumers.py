"""WebSocket consumers: authenticate, decode a frame, call a service, encode a reply."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from config.errors import AppError, BadFrame, error_frame
from messaging.schemas import optional_id, parse_frame


class StatusConsumer(AsyncJsonWebsocketConsumer):
    """Public liveness socket: a `ping` goes through the channel layer and comes back as `pong`.

    The round trip through the layer (Redis when configured) is what the status line shows.
    """

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = parse_frame(text_data)
            if frame.type != "ping":
                raise BadFrame(
                    f"Unknown frame type {frame.type!r}; this socket takes 'ping'.",
                    code="unknown_type",
                )
            ping_id = optional_id(frame.body)
        except AppError as error:
            await self.send_json(error_frame(error))
            return
        await self.channel_layer.send(self.channel_name, {"type": "status.pong", "id": ping_id})

    async def status_pong(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "pong", "v": 1, "id": event["id"]})
