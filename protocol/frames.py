"""The names of the WebSocket protocol, defined once for the server and the Python client:
frame types and close codes (docs/protocol.md section 20); the JavaScript twin is
static/js/protocol/frames.js. Channel-layer events are in devices/events.py."""

from __future__ import annotations

PROTOCOL_VERSION = 1  # the `v` of every frame, both ways

# Client to server (`ping` also on /ws/status/).
PING = "ping"
SEND = "send"
GROUP_SEND = "group_send"
ACK = "ack"
FETCH = "fetch"

# Server to client.
PONG = "pong"
ACCEPTED = "accepted"
DELIVER = "deliver"
REVOKED = "revoked"
DEVICES_CHANGED = "devices_changed"
LINK_SIGNED = "link_signed"
PREKEYS_LOW = "prekeys_low"
STATE_CHANGED = "state_changed"
ACCOUNT_RENAMED = "account_renamed"
GROUP_CHANGED = "group_changed"
LINK_STATE = "link_state"
ERROR = "error"

CLOSE_REVOKED = 4001  # the device was logged out: the client wipes its state
CLOSE_UNAUTHENTICATED = 4003  # no signed-in device or link request: refused at the handshake
# The node stops (drains): reconnect now, the next socket reaches another node. Before accept
# it is the HTTP 503 of the handshake (web/serve.py).
CLOSE_SERVICE_RESTART = 1012
