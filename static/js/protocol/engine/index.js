// The device engine (docs/protocol.md section 22): every device-side rule as a pure state
// machine; mirror of protocol/engine/.

/** @typedef {import("./effects.js").Effect} Effect */
/** @typedef {import("./events.js").Event} Event */
/** @typedef {import("./events.js").SyncEvent} SyncEvent */
/** @typedef {import("./events.js").GroupEvent} GroupEvent */

export {
  AcceptGroupKey,
  AcceptGroupReceipt,
  AcceptHistoryKey,
  AcceptResend,
  AcceptRetryRequest,
  AcceptSyncCheckpoint,
  AcceptSyncKey,
  ApplyReceipt,
  ContentVerdict,
  DropBlocked,
  DropDuplicate,
  ForgetRetry,
  GroupContent,
  GroupListsWanted,
  GroupNotice,
  GroupReceipt,
  GroupSend,
  GroupSign,
  HttpRequest,
  MarkRead,
  Notice,
  Resend,
  SendContent,
  SendFrame,
  SendPlan,
  SendRetryRequest,
  ShareSyncCheckpoint,
  ShareSyncKey,
  StoreList,
  StoreMessage,
  StoreResendCount,
  StoreRetry,
  StoreSync,
  SyncChanged,
} from "./effects.js";
export {
  ContentDecrypted,
  ContentReceived,
  DecryptFailed,
  MessagesRead,
  eventFromJSON,
  FrameReceived,
  GroupAnswered,
  GroupChangeWanted,
  groupEventFromJSON,
  GroupFetchWanted,
  GroupKeyReceived,
  GroupListsKnown,
  GroupMessageReceived,
  GroupMessagesRead,
  GroupReceiptReceived,
  GroupSendAnswered,
  GroupSendWanted,
  GroupSigned,
  HttpAnswered,
  ListWanted,
  RetryAgain,
  RetryDue,
  RetryRequested,
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
export { GROUPS_PATH, handle as handleGroup, KINDS } from "./group.js";
export { GroupRecord, MAX_HELD, MAX_WRITE_ATTEMPTS, RECEIVING_CHAINS } from "./groupstate.js";
export { HISTORY_DAYS, HISTORY_FORMAT, historyBundle, historyRecords } from "./history.js";
export { acceptList, deviceListPath, listChanges, parseListing } from "./lists.js";
export { handle, OWN_DEVICES_ONLY } from "./machine.js";
export { MAX_MISMATCH_RETRIES } from "./sending.js";
export { contentDecrypted, messagesRead, seenKey } from "./receiving.js";
export { readPosition, readState, readUpTo } from "./reading.js";
export { MAX_RETRIES, MAX_WAITING, RESEND_CACHE_MS, RESEND_CACHE_SIZE, RETRY_AFTER_MS, retryWait } from "./retry.js";
export {
  DeviceState,
  isBlocked,
  LIST_MAX_AGE_MS,
  ListRecord,
  PendingFetch,
  PendingSend,
  RetryRecord,
  retryKey,
} from "./state.js";
export { handle as handleSync, MAX_PATCH_MUTATIONS, STATE_PATH } from "./sync.js";
export { DEVICES, LAST_USE_EVERY_MS, lastUsed } from "./syncdevices.js";
export { SyncRequest, SyncState } from "./syncstate.js";
