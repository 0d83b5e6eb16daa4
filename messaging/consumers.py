"""WebSocket consumers: authenticate, decode a frame, call a service, encode a reply."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from config.errors import AppError, BadFrame, error_frame
from devices import events, presence
from messaging.schemas import optional_id, parse_frame

CLOSE_REVOKED = 4001
CLOSE_UNAUTHENTICATED = 4003


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


class DeviceConsumer(AsyncJsonWebsocketConsumer):
    """One socket per signed-in device: account notices now, envelopes later (docs/protocol.md)."""

    device_id: str | None = None

    async def connect(self) -> None:
        device = await presence.socket_device(self.scope)
        if device is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.device_id = device.id
        self.groups_joined = [events.device_group(device.id), events.user_group(device.user_id)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await presence.socket_opened(device_id=device.id, channel_name=self.channel_name)

    async def disconnect(self, code: int) -> None:
        if self.device_id is None:
            return
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        await presence.socket_closed(device_id=self.device_id, channel_name=self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            frame = parse_frame(text_data)
            if frame.type != "ping":
                raise BadFrame(f"Unknown frame type {frame.type!r}.", code="unknown_type")
            ping_id = optional_id(frame.body)
        except AppError as error:
            await self.send_json(error_frame(error))
            return
        alive = await presence.socket_seen(device_id=self.device_id, channel_name=self.channel_name)
        if not alive:
            await self._revoked("logged_out")
            return
        await self.send_json({"type": "pong", "v": 1, "id": ping_id})

    async def _revoked(self, reason: str) -> None:
        await self.send_json({"type": "revoked", "v": 1, "reason": reason})
        await self.close(code=CLOSE_REVOKED)

    async def device_revoked(self, event: dict[str, Any]) -> None:
        await self._revoked(event["reason"])

    async def devices_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(
            {
                "type": "devices_changed",
                "v": 1,
                "reason": event["reason"],
                "device_id": event["device_id"],
                "device_name": event.get("device_name"),
            }
        )

    async def link_signed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "link_signed", "v": 1, "link_id": event["link_id"]})


class LinkConsumer(AsyncJsonWebsocketConsumer):
    """The new browser waits here for its link request to change state."""

    async def connect(self) -> None:
        link_id = self.scope["url_route"]["kwargs"]["link_id"]
        state = await presence.link_state_for_browser(self.scope, link_id)
        if state is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.link_group = events.link_group(link_id)
        await self.channel_layer.group_add(self.link_group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "link_state", "v": 1, "state": state})

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "link_group"):
            await self.channel_layer.group_discard(self.link_group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send_json(
            error_frame(BadFrame("This socket only sends; use the HTTP API.", code="unknown_type"))
        )

    async def link_changed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "link_state", "v": 1, "state": event["state"]})
