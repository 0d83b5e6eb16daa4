// This browser's device state in IndexedDB "parley": its own keys (private keys included,
// never sent anywhere), its account, the device lists it has accepted (rollback and
// key-change checks, docs/protocol.md 4.3), and the messenger's state: pairwise sessions,
// used base keys, seen content ids, contacts, conversations, messages and the outbox; since
// version 3 the retry records and the resend cache (docs/protocol.md 24, retries.js); since
// version 4 the group machine's records and the group conversations (groups.js).

const DB_NAME = "parley";
const DB_VERSION = 4;

/** Object stores of the messenger (versions 2 to 4); their records are described in records.js and groups.js. */
export const MESSENGER_STORES = /** @type {const} */ ([
  "sessions",
  "baseKeys",
  "seen",
  "contacts",
  "conversations",
  "messages",
  "outbox",
  "meta",
  "retries",
  "resendCache",
  "groups",
  "groupMessages",
]);
const SELF = "self";

/** @type {Promise<IDBDatabase> | null} */
let opening = null;
/** Set by wipe(): work still in flight (the messenger, a socket frame) must not re-create
 * the database this page just deleted. */
let wiped = false;

/** @returns {Promise<IDBDatabase>} */
function open() {
  if (wiped) return Promise.reject(new Error("This device was logged out; its data was deleted."));
  opening ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, DB_VERSION);
    request.onupgradeneeded = (event) => {
      const db = request.result;
      if (event.oldVersion < 1) {
        db.createObjectStore("device");
        db.createObjectStore("lists");
      }
      if (event.oldVersion < 2) {
        db.createObjectStore("sessions", { keyPath: "deviceId" });
        db.createObjectStore("baseKeys");
        db.createObjectStore("seen");
        db.createObjectStore("contacts", { keyPath: "username" });
        db.createObjectStore("conversations", { keyPath: "peer" });
        const messages = db.createObjectStore("messages", { keyPath: "key" });
        messages.createIndex("byConversation", ["conversation", "timestamp"]);
        db.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true });
        db.createObjectStore("meta");
      }
      if (event.oldVersion < 3) {
        db.createObjectStore("retries");
        const cache = db.createObjectStore("resendCache", { keyPath: "envelope_id" });
        cache.createIndex("bySentAt", "sent_at");
      }
      if (event.oldVersion < 4) {
        db.createObjectStore("groups");
        const lines = db.createObjectStore("groupMessages", { keyPath: "key" });
        lines.createIndex("byGroup", ["group", "timestamp"]);
      }
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
 * @property {number} [nextKemPrekeyId] next unused KEM prekey id (absent: 1; 27.1)
 * @property {string} accountId username
 * @property {string} displayName
 * @property {boolean} isPrimary
 * @property {string} name this device's name
 * @property {boolean} [awaitingHistory] the primary chose to send its history (history.js)
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
 * @property {number} [checkedAt] when the server last served it (ms; the engine's record)
 */

/** @param {string} accountId @returns {Promise<AcceptedList | undefined>} */
export async function getAcceptedList(accountId) {
  return run("lists", "readonly", (s) => s.get(accountId));
}

/** @param {string} accountId @param {AcceptedList} record */
export async function putAcceptedList(accountId, record) {
  await run("lists", "readwrite", (s) => s.put(record, accountId));
}

/**
 * One read-write transaction over several stores: `work` queues its requests synchronously
 * (IndexedDB commits a transaction as soon as nothing is pending), and everything it wrote
 * commits together or not at all.
 * @template T
 * @param {string[]} stores
 * @param {(s: Record<string, IDBObjectStore>) => T} work
 * @returns {Promise<T>}
 */
export async function transact(stores, work) {
  const db = await open();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(stores, "readwrite");
    /** @type {any} */
    let result;
    try {
      result = work(Object.fromEntries(stores.map((name) => [name, tx.objectStore(name)])));
    } catch (error) {
      tx.abort();
      reject(error);
      return;
    }
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** @param {string} store @param {IDBValidKey} key */
export function read(store, key) {
  return run(store, "readonly", (s) => s.get(key));
}

/** @param {string} store @param {IDBKeyRange | IDBValidKey} [query] @returns {Promise<any[]>} */
export function readAll(store, query) {
  return run(store, "readonly", (s) => s.getAll(query));
}

/**
 * @param {string} store @param {string} index @param {IDBKeyRange} range
 * @returns {Promise<any[]>}
 */
export function readIndex(store, index, range) {
  return run(store, "readonly", (s) => s.index(index).getAll(range));
}

/** @param {string} store @param {any} value @param {IDBValidKey} [key] */
export async function write(store, value, key) {
  await run(store, "readwrite", (s) => (key === undefined ? s.put(value) : s.put(value, key)));
}

/** @param {string} store @param {IDBValidKey} key */
export async function remove(store, key) {
  await run(store, "readwrite", (s) => s.delete(key));
}

/** Whether the database exists, without creating it (a wiped device stays empty). */
async function exists() {
  if (opening) return true;
  const databases = await indexedDB.databases();
  return databases.some((d) => d.name === DB_NAME);
}

/** Delete everything this device holds. */
export async function wipe() {
  wiped = true;
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
