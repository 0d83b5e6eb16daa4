// This browser's device state in IndexedDB "parley": its own keys (private keys included,
// never sent anywhere), its account, and the device lists it has accepted (rollback and
// key-change checks, docs/protocol.md 4.3).

const DB_NAME = "parley";
const DB_VERSION = 1;
const SELF = "self";

/** @type {Promise<IDBDatabase> | null} */
let opening = null;

/** @returns {Promise<IDBDatabase>} */
function open() {
  opening ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore("device");
      db.createObjectStore("lists");
    };
    request.onsuccess = () => {
      const db = request.result;
      // Another tab wiping the database must not be blocked by this connection.
      db.onversionchange = () => {
        db.close();
        opening = null;
      };
      resolve(db);
    };
    request.onerror = () => reject(request.error);
  });
  return opening;
}

/**
 * @param {string} store
 * @param {IDBTransactionMode} mode
 * @param {(s: IDBObjectStore) => IDBRequest} action
 */
async function run(store, mode, action) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(store, mode);
    const request = action(tx.objectStore(store));
    tx.oncomplete = () => resolve(request.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/**
 * @typedef {object} SelfRecord
 * @property {string} deviceId
 * @property {any} keys DeviceKeys.toJSON(): private keys
 * @property {number} nextPrekeyId next unused one-time prekey id
 * @property {string} accountId username
 * @property {string} displayName
 * @property {boolean} isPrimary
 * @property {string} name this device's name
 */

/** @returns {Promise<SelfRecord | undefined>} */
export async function getSelf() {
  if (!(await exists())) return undefined;
  return run("device", "readonly", (s) => s.get(SELF));
}

/** @param {SelfRecord} record */
export async function putSelf(record) {
  await run("device", "readwrite", (s) => s.put(record, SELF));
}

/**
 * @typedef {object} AcceptedList
 * @property {number} version
 * @property {string} hash b64u list hash
 * @property {string} accountKey b64u
 * @property {Record<string, string>} knownDevices every device id ever accepted → b64u key
 * @property {any} list the list's JSON
 */

/** @param {string} accountId @returns {Promise<AcceptedList | undefined>} */
export async function getAcceptedList(accountId) {
  return run("lists", "readonly", (s) => s.get(accountId));
}

/** @param {string} accountId @param {AcceptedList} record */
export async function putAcceptedList(accountId, record) {
  await run("lists", "readwrite", (s) => s.put(record, accountId));
}

/** Whether the database exists, without creating it (a wiped device stays empty). */
async function exists() {
  if (opening) return true;
  const databases = await indexedDB.databases();
  return databases.some((d) => d.name === DB_NAME);
}

/** Delete everything this device holds. */
export async function wipe() {
  if (opening) {
    try {
      (await opening).close();
    } catch {
      // a failed open holds nothing to close
    }
    opening = null;
  }
  await new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(DB_NAME);
    request.onsuccess = request.onerror = request.onblocked = () => resolve(undefined);
  });
}
