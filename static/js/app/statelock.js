// The device's state lock. Several tabs are one device: session state, prekeys and the
// outbox's order change only under the "parley-state" Web Lock.

/**
 * Run `work` holding the device's state lock.
 * @template T @param {() => Promise<T>} work @returns {Promise<T>}
 */
export function withStateLock(work) {
  if (!("locks" in navigator)) return work();
  return navigator.locks.request("parley-state", work);
}
