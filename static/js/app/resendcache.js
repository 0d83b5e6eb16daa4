// The resend cache (IndexedDB "resendCache", docs/protocol.md 24.3): what this device sent,
// per envelope, so that a device that could not decrypt it can be sent it again. Kept with
// the sessions that encrypted it (fanout.js), in the same transaction; the newest
// RESEND_CACHE_SIZE entries and none older than RESEND_CACHE_MS.
//
//   resendCache  {envelope_id, recipient, sent_at (ms), targets: {device id: b64u encoded
//                content}, resends: {device id: count}}

import { ContentType, encoding, engine } from "../protocol/index.js";
import * as store from "./store.js";

const { b64uEncode } = encoding;

/**
 * The cache entry of an outbox item just encrypted: every device's content; a resend is
 * cached as an alias of the entry it answers (its inner content, that entry's count), so a
 * resend that is lost too is asked for and answered with the same counter.
 * @param {any} item the outbox item @param {Map<string, Uint8Array>} plaintexts device id →
 * encoded content @param {number} now
 * @returns {any | null} null for a resend of nothing
 */
export function cacheEntry(item, plaintexts, now) {
  if (item.contentType === ContentType.RESEND) {
    const alias = item.retry?.alias;
    if (!alias || item.body.content === null) return null;
    return {
      envelope_id: item.envelopeId,
      recipient: item.recipient,
      sent_at: alias.sentAt,
      targets: { [item.device]: item.body.content },
      resends: { [item.device]: alias.count },
    };
  }
  return {
    envelope_id: item.envelopeId,
    recipient: item.recipient,
    sent_at: now,
    targets: Object.fromEntries([...plaintexts].map(([device, content]) => [device, b64uEncode(content)])),
    resends: {},
  };
}

/**
 * Put `entry` in the cache (inside the caller's transaction) and drop what the cache no
 * longer keeps: entries older than RESEND_CACHE_MS, and the oldest beyond RESEND_CACHE_SIZE.
 * @param {IDBObjectStore} cache @param {any} entry
 */
export function keepInCache(cache, entry) {
  cache.put(entry);
  const bySentAt = cache.index("bySentAt");
  const expired = bySentAt.openKeyCursor(IDBKeyRange.upperBound(Date.now() - engine.RESEND_CACHE_MS, true));
  expired.onsuccess = () => {
    const cursor = expired.result;
    if (!cursor) return;
    cache.delete(cursor.primaryKey);
    cursor.continue();
  };
  // The oldest `extra` go too; with the expired ones that leaves at most the newest SIZE.
  const counted = cache.count();
  counted.onsuccess = () => {
    let extra = counted.result - engine.RESEND_CACHE_SIZE;
    if (extra <= 0) return;
    const oldest = bySentAt.openKeyCursor();
    oldest.onsuccess = () => {
      const cursor = oldest.result;
      if (!cursor || extra-- <= 0) return;
      cache.delete(cursor.primaryKey);
      cursor.continue();
    };
  };
}

/** The entry of an envelope this device sent, or null. @param {string} envelopeId */
export async function cachedEntry(envelopeId) {
  return (await store.read("resendCache", envelopeId)) ?? null;
}
