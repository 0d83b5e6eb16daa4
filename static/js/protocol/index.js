// Parley protocol in the browser: the JavaScript mirror of protocol/ (docs/protocol.md).
// Await ready() once; everything else is synchronous.

export { ready } from "./primitives.js";
export * from "./exceptions.js";
export * as encoding from "./encoding.js";
export * as strictjson from "./strictjson.js";
export * as primitives from "./primitives.js";
export { systemRng, TestRng } from "./rng.js";
export {
  DeviceKeys,
  generateDeviceKeys,
  generateIdentity,
  generateKemPrekey,
  generateKemPrekeys,
  generateOneTimePrekeys,
  generateSignedPrekey,
  IdentityKeyPair,
  KEM_PREKEYS_PER_UPLOAD,
  KemPrekey,
  kemPrekeyBytes,
  kemPrekeyJson,
  KemRefill,
  makePrekeyBundle,
  OneTimePrekey,
  planKemRefill,
  PrekeyBundle,
  PublicKemPrekey,
  SignedPrekey,
  signedPrekeyBytes,
  verifyPrekeyBundle,
  X25519KeyPair,
} from "./keys.js";
export {
  DeviceEntry,
  DeviceList,
  deviceListBytes,
  deviceListHash,
  deviceSignatureBytes,
  deviceSignatureProtocols,
  linkSignatureBytes,
  MAX_DEVICES,
  SPOKEN_PROTOCOLS,
  signDevice,
  signDeviceList,
  signLink,
  verifyDeviceList,
  verifyDeviceSignature,
  verifyLinkSignature,
} from "./devicelist.js";
export * as x3dh from "./x3dh.js";
export {
  decodeMessage,
  Header,
  KemAnswer,
  KemOffer,
  MAX_MESSAGE_BYTES,
  PrekeyMessage,
  PROTOCOL_VERSION,
  RatchetMessage,
} from "./message.js";
export { KEM_INTERVAL, KemState } from "./pqratchet.js";
export { ARCHIVED_SESSIONS, MAX_PREVIOUS_DH_REMOTE, outdatedFor, PendingPrekey, Session } from "./ratchet.js";
export { kdfCk, kdfRk, MAX_SKIP, MAX_SKIPPED_TOTAL } from "./ratchetkeys.js";
export { acceptPrekeyMessage, InboundSession } from "./inbound.js";
export {
  Content,
  CONTENT_PADDING,
  ContentType,
  decodeContent,
  encodeContent,
  KNOWN_TYPES,
  MAX_BODY_BYTES,
  MAX_RECEIPT_IDS,
  newContent,
  validateBody,
} from "./content.js";
export { encryptForDevices } from "./fanout.js";
export * as engine from "./engine/index.js";
export * as frames from "./frames.js";
export {
  fingerprint,
  formatSafetyNumber,
  QR_PREFIX,
  safetyNumber,
  safetyQrPayload,
} from "./safety.js";
export * as attachments from "./attachments.js";
export { HISTORY_CHUNK, historyHash, openHistory, SealedHistory, sealHistory } from "./history.js";
export {
  LINK_PATH,
  linkChallenge,
  linkCheckCode,
  LinkCode,
  linkTokenBytes,
  linkUrl,
  makeProvisioning,
  openProvisioning,
  parseLinkUrl,
  Provisioning,
  provisioningPayload,
  sealProvisioning,
  signIn,
  signInBytes,
  signLinkToken,
  verifyLinkToken,
  verifySignIn,
} from "./linking.js";
export {
  AccountState,
  applyEntry,
  buildPatch,
  buildSnapshot,
  Checkpoint,
  RECENT_CHAINS,
  supersedes,
  SyncRecord,
  WrittenEntry,
} from "./accountstate.js";
export { applyEntries, checkFetched, compareCheckpoint } from "./synclog.js";
export {
  COLLECTIONS,
  decodeEntry,
  decodeMutation,
  encodeEntry,
  encodeMutation,
  entryMac,
  indexMac,
  MAX_PATCH_BYTES,
  MAX_RECORD_BYTES,
  MAX_SNAPSHOT_BYTES,
  Mutation,
  newSyncKey,
  openRecord,
  SealedRecord,
  sealRecord,
  SyncEntry,
  SyncKey,
  SyncSubkeys,
  syncSubkeys,
  valueMac,
  ZERO_CHAIN,
} from "./syncentry.js";
export { EMPTY_LTHASH, LTHASH_BYTES, lthashUpdate, stateHash } from "./statehash.js";
// Namespaced: groups.decodeEntry and syncentry's decodeEntry are different functions.
export * as groups from "./groups.js";
export * as senderkeys from "./senderkeys.js";
