"""One `send` frame and what went into it (docs/protocol.md section 20): what sending
prepares, the connection sends and the events name (a module of its own, so that the events
need not import sending)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol.content import ContentType
from protocol.encoding import b64u_encode


@dataclass(frozen=True)
class OutgoingMessage:
    """One `send` frame and what went into it; `retry` rebuilds it after mismatched_devices."""

    envelope_id: str
    recipient: str
    content_type: ContentType
    body: dict[str, Any]
    message_id: bytes
    timestamp: int
    recipient_devices: tuple[str, ...]
    own_devices: tuple[str, ...]
    targets: dict[str, bytes] = field(repr=False)
    attempt: int = 1
    partial: bool = False  # to one device only: a retry request or a resend (24.4)

    @property
    def frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "send",
            "v": 1,
            "id": self.envelope_id,
            "recipient": self.recipient,
            "targets": {d: b64u_encode(c) for d, c in self.targets.items()},
        }
        if self.content_type is ContentType.ATTACHMENT:  # its target devices may fetch it (19.5)
            frame["attachments"] = [self.body["blob_id"]]
        return frame | {"partial": True} if self.partial else frame
