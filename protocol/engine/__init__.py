"""The device engine (docs/protocol.md section 22): every device-side rule as a pure state
machine, mirrored line for line in static/js/protocol/engine/."""

from protocol.engine.effects import (
    AcceptHistoryKey,
    ApplyReceipt,
    ContentVerdict,
    DropDuplicate,
    Effect,
    HttpRequest,
    MarkRead,
    Notice,
    SendContent,
    SendFrame,
    SendPlan,
    StoreList,
    StoreMessage,
)
from protocol.engine.events import (
    ContentDecrypted,
    ContentReceived,
    Event,
    FrameReceived,
    HttpAnswered,
    ListWanted,
    MessagesRead,
    SenderSeen,
    SendWanted,
    event_from_dict,
)
from protocol.engine.history import HISTORY_DAYS, HISTORY_FORMAT, history_bundle, history_records
from protocol.engine.lists import accept_list, device_list_path, list_changes, parse_listing
from protocol.engine.machine import OWN_DEVICES_ONLY, handle
from protocol.engine.receiving import content_decrypted, messages_read, seen_key
from protocol.engine.sending import MAX_MISMATCH_RETRIES
from protocol.engine.state import (
    LIST_MAX_AGE_MS,
    DeviceState,
    ListRecord,
    PendingFetch,
    PendingSend,
)

__all__ = [
    "HISTORY_DAYS",
    "HISTORY_FORMAT",
    "history_bundle",
    "history_records",
    "AcceptHistoryKey",
    "ApplyReceipt",
    "ContentDecrypted",
    "DropDuplicate",
    "MarkRead",
    "MessagesRead",
    "SendContent",
    "StoreMessage",
    "content_decrypted",
    "messages_read",
    "seen_key",
    "LIST_MAX_AGE_MS",
    "MAX_MISMATCH_RETRIES",
    "OWN_DEVICES_ONLY",
    "ContentReceived",
    "ContentVerdict",
    "DeviceState",
    "Effect",
    "Event",
    "FrameReceived",
    "HttpAnswered",
    "HttpRequest",
    "ListRecord",
    "ListWanted",
    "Notice",
    "PendingFetch",
    "PendingSend",
    "SendFrame",
    "SendPlan",
    "SendWanted",
    "SenderSeen",
    "StoreList",
    "accept_list",
    "device_list_path",
    "event_from_dict",
    "handle",
    "list_changes",
    "parse_listing",
]
