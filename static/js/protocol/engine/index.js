// The device engine (docs/protocol.md section 22): every device-side rule as a pure state
// machine; mirror of protocol/engine/.

/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {import("./events.js").Event} Event */
/** @typedef {import("./events.js").SyncEvent} SyncEvent */

export {
  AcceptHistoryKey,
  AcceptSyncCheckpoint,
  AcceptSyncKey,
  ApplyReceipt,
  ContentVerdict,
  DropBlocked,
  DropDuplicate,
  HttpRequest,
  MarkRead,
  Notice,
  SendContent,
  SendFrame,
  SendPlan,
  ShareSyncCheckpoint,
  ShareSyncKey,
  StoreList,
  StoreMessage,
  StoreSync,
  SyncChanged,
} from "./effects.js";
export {
  ContentDecrypted,
  ContentReceived,
  MessagesRead,
  eventFromJSON,
  FrameReceived,
  HttpAnswered,
  ListWanted,
  SenderSeen,
  SendWanted,
  SyncAnswered,
  SyncCheckpointReceived,
  SyncDevicesListed,
  SyncDeviceUsed,
  syncEventFromJSON,
  SyncFetchWanted,
  SyncKeyReceived,
  SyncKeyShareWanted,
  SyncMutated,
  SyncRotateWanted,
} from "./events.js";
export { HISTORY_DAYS, HISTORY_FORMAT, historyBundle, historyRecords } from "./history.js";
export { acceptList, deviceListPath, listChanges, parseListing } from "./lists.js";
export { handle, OWN_DEVICES_ONLY } from "./machine.js";
export { MAX_MISMATCH_RETRIES } from "./sending.js";
export { contentDecrypted, isBlocked, messagesRead, seenKey } from "./receiving.js";
export { readPosition, readState, readUpTo } from "./reading.js";
export { DeviceState, LIST_MAX_AGE_MS, ListRecord, PendingFetch, PendingSend } from "./state.js";
export { handle as handleSync, MAX_PATCH_MUTATIONS, STATE_PATH } from "./sync.js";
export { DEVICES, LAST_USE_EVERY_MS, lastUsed } from "./syncdevices.js";
export { SyncRequest, SyncState } from "./syncstate.js";
