// The names of the WebSocket protocol in the browser, defined once: frame types and close codes
// (docs/protocol.md section 20), with the same names as protocol/frames.py (server and Python client)
// (tests/messaging/test_frames.py checks that the two agree).

/** The `v` of every frame, both ways (messaging.schemas.PROTOCOL_VERSION on the server). */
export const PROTOCOL_VERSION = 1;

// Client to server (`ping` also on /ws/status/).
export const PING = "ping";
export const SEND = "send";
export const GROUP_SEND = "group_send";
export const ACK = "ack";
export const FETCH = "fetch";

// Server to client.
export const PONG = "pong";
export const ACCEPTED = "accepted";
export const DELIVER = "deliver";
export const REVOKED = "revoked";
export const DEVICES_CHANGED = "devices_changed";
export const LINK_SIGNED = "link_signed";
export const PREKEYS_LOW = "prekeys_low";
export const STATE_CHANGED = "state_changed";
export const ACCOUNT_RENAMED = "account_renamed";
export const GROUP_CHANGED = "group_changed";
export const LINK_STATE = "link_state";
export const ERROR = "error";

/** The device was logged out: the client wipes its state. */
export const CLOSE_REVOKED = 4001;
/** No signed-in device or link request: refused at the handshake. */
export const CLOSE_UNAUTHENTICATED = 4003;
/** The node stops (drains): reconnect now, the next socket reaches another node. */
export const CLOSE_SERVICE_RESTART = 1012;
