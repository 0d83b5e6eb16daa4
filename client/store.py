"""One device's local state in one SQLite file: its private keys, the device lists it has
accepted, its pairwise sessions, the replay memory (used base keys, seen message ids), the
account's synced state (the sync machine's, with the account sync keys), the messages it
received and sent, the display names contacts chose, the resend cache of what it sent
recently and the retry records of what it could not decrypt (docs/protocol.md section 24).

The file holds private keys, so it is created 0600 in a 0700 directory. Every write is a
transaction; `Store.transaction()` groups several writes (a decrypt that advances a session
and records the message id must commit both or neither, DESIGN §7).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from protocol.devicelist import DeviceList
from protocol.encoding import b64u_encode
from protocol.engine import RESEND_CACHE_MS, RESEND_CACHE_SIZE, GroupRecord, RetryRecord, SyncState
from protocol.keys import (
    DeviceKeys,
    IdentityKeyPair,
    KemPrekey,
    KemRefill,
    OneTimePrekey,
    SignedPrekey,
    X25519KeyPair,
    generate_one_time_prekeys,
)
from protocol.ratchet import ARCHIVED_SESSIONS, Session
from protocol.rng import Rng

SCHEMA_VERSION = 8


SCHEMA = """
CREATE TABLE device (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    device_id TEXT NOT NULL,
    name TEXT NOT NULL,
    server TEXT NOT NULL,
    account_id TEXT NOT NULL,
    account_key BLOB NOT NULL,
    identity_seed BLOB NOT NULL,
    linked_at INTEGER NOT NULL
);
CREATE TABLE signed_prekeys (
    id INTEGER PRIMARY KEY,
    private_key BLOB NOT NULL,
    signature BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE one_time_prekeys (id INTEGER PRIMARY KEY, private_key BLOB NOT NULL);
CREATE TABLE device_lists (
    account_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    hash BLOB NOT NULL,
    body TEXT NOT NULL,
    accepted_at INTEGER NOT NULL
);
CREATE TABLE known_devices (
    account_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    identity_key BLOB NOT NULL,
    PRIMARY KEY (account_id, device_id)
);
CREATE TABLE sessions (
    device_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE used_base_keys (base_key BLOB PRIMARY KEY);
CREATE TABLE seen_messages (
    sender_device_id TEXT NOT NULL,
    message_id BLOB NOT NULL,
    seen_at INTEGER NOT NULL,
    PRIMARY KEY (sender_device_id, message_id)
);
CREATE TABLE server_cookies (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), body TEXT NOT NULL);
"""

# Each later schema version is the statements that bring the one before it up to date.
MIGRATIONS = {
    # the session a newer one replaced, tried when the newer one cannot decrypt (protocol 7.1)
    2: "CREATE TABLE previous_sessions (device_id TEXT PRIMARY KEY, state TEXT NOT NULL);",
    # one-time prekey ids are never reused: a refill numbers its keys after every earlier one
    3: """CREATE TABLE prekey_ids (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1), next_id INTEGER NOT NULL
    );
    INSERT INTO prekey_ids SELECT 1, COALESCE(MAX(id), 0) + 1 FROM one_time_prekeys""",
    # the sync machine's state (docs/protocol.md section 22.8): keys, synced state, pending
    4: "CREATE TABLE sync_state (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), body TEXT NOT NULL);",
    # the conversations (`read`: read on this device; the synced position covers more, 22.8)
    # and the public display names of contacts (GET /api/accounts/<u>/profile)
    5: """CREATE TABLE messages (
        author TEXT NOT NULL,
        id TEXT NOT NULL,
        conversation TEXT NOT NULL,
        author_device TEXT,
        kind TEXT NOT NULL,
        outgoing INTEGER NOT NULL,
        text TEXT NOT NULL,
        timestamp INTEGER NOT NULL,
        content_type INTEGER,
        read INTEGER NOT NULL,
        PRIMARY KEY (author, id)
    );
    CREATE INDEX messages_by_conversation ON messages (conversation, timestamp);
    CREATE TABLE display_names (
        username TEXT PRIMARY KEY, display_name TEXT NOT NULL, fetched_at INTEGER NOT NULL
    )""",
    # what this device sent recently, to send again when a device could not decrypt it, and
    # what it could not decrypt itself (docs/protocol.md 24.2, 24.3)
    6: """CREATE TABLE resend_cache (
        envelope_id TEXT PRIMARY KEY,
        recipient TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        targets TEXT NOT NULL,
        resends TEXT NOT NULL
    );
    CREATE INDEX resend_cache_by_age ON resend_cache (sent_at);
    CREATE TABLE retries (
        sender_device TEXT NOT NULL,
        envelope_id TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (sender_device, envelope_id)
    );
    CREATE TABLE archived_sessions (
        id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, state TEXT NOT NULL
    );
    INSERT INTO archived_sessions (device_id, state) SELECT device_id, state FROM previous_sessions;
    DROP TABLE previous_sessions;
    CREATE INDEX archived_sessions_by_device ON archived_sessions (device_id, id)""",
    # the group machine's record of each group this device holds (docs/protocol.md 25.8)
    7: "CREATE TABLE groups (group_id TEXT PRIMARY KEY, body TEXT NOT NULL);",
    # KEM prekeys for version-2 sessions, kept as seeds (docs/protocol.md 27.1), and the id
    # of the next one (one counter for the one-time ones and the last-resort one)
    8: """CREATE TABLE kem_prekeys (
        id INTEGER PRIMARY KEY, seed BLOB NOT NULL, last_resort INTEGER NOT NULL
    );
    CREATE TABLE kem_prekey_ids (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1), next_id INTEGER NOT NULL
    )""",
}


MESSAGE_FIELDS = (
    "author",
    "id",
    "conversation",
    "author_device",
    "kind",
    "outgoing",
    "text",
    "timestamp",
    "content_type",
    "read",
)


class StoreError(Exception):
    """The store cannot do what was asked (already holds a device, newer schema...)."""


def now_ms() -> int:
    return int(time.time() * 1000)


def default_store_path(server: str) -> Path:
    """~/.parley/<server-host>.sqlite3 (the port, if any, after an underscore)."""
    parts = urlsplit(server)
    host = parts.hostname or "server"
    name = f"{host}_{parts.port}" if parts.port else host
    return Path.home() / ".parley" / f"{name}.sqlite3"


@dataclass(frozen=True)
class OwnDevice:
    """This device: who it is on which server, in which account, with which private keys."""

    device_id: str
    name: str
    server: str
    account_id: str
    account_key: bytes
    keys: DeviceKeys
    linked_at: int

    @property
    def is_primary(self) -> bool:
        return self.keys.identity.public == self.account_key


@dataclass(frozen=True)
class AcceptedList:
    """The newest device list this device verified for an account (section 4.3)."""

    device_list: DeviceList
    hash: bytes
    accepted_at: int

    @property
    def version(self) -> int:
        return self.device_list.version


@dataclass(frozen=True)
class CachedSend:
    """One entry of the resend cache (docs/protocol.md 24.3): the encoded content each target
    device got under the envelope id (b64u; the own devices' sent transcript), and how often
    each was sent again."""

    envelope_id: str
    recipient: str
    sent_at: int
    targets: Mapping[str, str]
    resends: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "envelope_id": self.envelope_id,
            "recipient": self.recipient,
            "sent_at": self.sent_at,
            "targets": dict(sorted(self.targets.items())),
            "resends": dict(sorted(self.resends.items())),
        }


class UsedBaseKeys:
    """The X3DH base keys already accepted, as the Container accept_prekey_message reads."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __contains__(self, base_key: object) -> bool:
        return (
            self._store._one("SELECT 1 FROM used_base_keys WHERE base_key = ?", (base_key,))
            is not None
        )


class Store:
    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._db = connection
        self._depth = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Store:
        """Open the file, creating it (0600, parent directory 0700) and its schema if needed."""
        path = Path(path).expanduser()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        connection = sqlite3.connect(path, isolation_level=None, timeout=10)
        connection.execute("PRAGMA foreign_keys = ON")
        store = cls(path, connection)
        store._migrate()
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wipe(self) -> None:
        """Forget everything: close and delete the file (and any journal beside it)."""
        self.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store schema {version} is newer than this client ({SCHEMA_VERSION})"
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction():
            if version == 0:
                self._run(SCHEMA)
                version = 1
            for step in range(version + 1, SCHEMA_VERSION + 1):
                self._run(MIGRATIONS[step])
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _run(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self._db.execute(statement)

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        return row

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    # ------------------------------------------------------------ own device and keys

    def device(self) -> OwnDevice | None:
        row = self._one(
            "SELECT device_id, name, server, account_id, account_key, identity_seed, linked_at"
            " FROM device"
        )
        if row is None:
            return None
        device_id, name, server, account_id, account_key, seed, linked_at = row
        return OwnDevice(
            device_id=device_id,
            name=name,
            server=server,
            account_id=account_id,
            account_key=bytes(account_key),
            keys=self.device_keys(IdentityKeyPair.from_seed(bytes(seed))),
            linked_at=linked_at,
        )

    def save_device(self, device: OwnDevice) -> None:
        """Record this store's one device with all its private keys."""
        with self.transaction():
            existing = self._one("SELECT device_id FROM device")
            if existing is not None:
                raise StoreError(
                    f"{self.path} already holds device {existing[0]}; log it out or use another store"
                )
            self._db.execute(
                "INSERT INTO device VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                (
                    device.device_id,
                    device.name,
                    device.server,
                    device.account_id,
                    device.account_key,
                    device.keys.identity.secret[:32],
                    device.linked_at,
                ),
            )
            self.add_signed_prekey(device.keys.signed_prekey)
            self.add_one_time_prekeys(device.keys.one_time_prekeys)
            kem = [*device.keys.kem_prekeys, *filter(None, [device.keys.last_resort_kem_prekey])]
            self._db.executemany(
                "INSERT INTO kem_prekeys VALUES (?, ?, ?)",
                [(k.id, k.seed, int(k.last_resort)) for k in kem],
            )
            self._db.execute(
                "INSERT INTO kem_prekey_ids VALUES (1, ?)",
                (max((k.id for k in kem), default=0) + 1,),
            )

    def add_signed_prekey(self, prekey: SignedPrekey) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO signed_prekeys VALUES (?, ?, ?, ?)",
                (prekey.id, prekey.key.private, prekey.signature, now_ms()),
            )

    def signed_prekeys(self) -> list[SignedPrekey]:
        """Every signed prekey still held, oldest id first (the last one is current)."""
        return [
            SignedPrekey(
                id=key_id,
                key=X25519KeyPair.from_private(bytes(private)),
                signature=bytes(signature),
            )
            for key_id, private, signature in self._all(
                "SELECT id, private_key, signature FROM signed_prekeys ORDER BY id"
            )
        ]

    def add_one_time_prekeys(
        self, prekeys: tuple[OneTimePrekey, ...] | list[OneTimePrekey]
    ) -> None:
        with self.transaction():
            self._db.executemany(
                "INSERT INTO one_time_prekeys VALUES (?, ?)",
                [(k.id, k.key.private) for k in prekeys],
            )

    def one_time_prekeys(self) -> tuple[OneTimePrekey, ...]:
        return tuple(
            OneTimePrekey(id=key_id, key=X25519KeyPair.from_private(bytes(private)))
            for key_id, private in self._all(
                "SELECT id, private_key FROM one_time_prekeys ORDER BY id"
            )
        )

    def new_one_time_prekeys(self, count: int, rng: Rng) -> tuple[OneTimePrekey, ...]:
        """Make and keep `count` fresh one-time prekeys, numbered after every id this device
        ever used (so a peer holding an old public key never meets a new private one)."""
        with self.transaction():
            row = self._one("SELECT next_id FROM prekey_ids")
            held = self._one("SELECT COALESCE(MAX(id), 0) + 1 FROM one_time_prekeys")
            first = max(row[0] if row else 1, held[0] if held else 1)
            fresh = generate_one_time_prekeys(range(first, first + count), rng)
            self.add_one_time_prekeys(fresh)
            self._db.execute(
                "INSERT INTO prekey_ids VALUES (1, ?) ON CONFLICT (singleton) DO UPDATE"
                " SET next_id = excluded.next_id",
                (first + count,),
            )
        return fresh

    def device_keys(self, identity: IdentityKeyPair) -> DeviceKeys:
        """This device's private keys as stored now (the identity key given)."""
        kem = self.kem_prekeys(identity)
        return DeviceKeys(
            identity=identity,
            signed_prekey=self.signed_prekeys()[-1],
            one_time_prekeys=self.one_time_prekeys(),
            kem_prekeys=tuple(k for k in kem.values() if not k.last_resort),
            last_resort_kem_prekey=self.last_resort_kem_prekey(identity),
        )

    def last_resort_kem_prekey(self, identity: IdentityKeyPair) -> KemPrekey | None:
        """The newest last-resort KEM prekey (an older one is kept while sessions may name it)."""
        row = self._one(
            "SELECT id, seed FROM kem_prekeys WHERE last_resort = 1 ORDER BY id DESC LIMIT 1"
        )
        if row is None:
            return None
        return KemPrekey.from_seed(identity, int(row[0]), bytes(row[1]), last_resort=True)

    def kem_prekeys(self, identity: IdentityKeyPair) -> dict[int, KemPrekey]:
        """Every KEM prekey held, one-time and last-resort, by id (section 27.1)."""
        return {
            key_id: KemPrekey.from_seed(identity, key_id, bytes(seed), last_resort=bool(last))
            for key_id, seed, last in self._all(
                "SELECT id, seed, last_resort FROM kem_prekeys ORDER BY id"
            )
        }

    def next_kem_prekey_id(self) -> int:
        row = self._one("SELECT next_id FROM kem_prekey_ids")
        return 1 if row is None else int(row[0])

    def save_kem_refill(self, refill: KemRefill) -> None:
        """Keep a refill's new private halves (before their public ones go out), and replace
        the last-resort key; the older one is kept for the sessions that may still name it
        until the next refill replaces it again."""
        with self.transaction():
            held = set(self.kem_prekeys(refill.keys.identity))
            last = refill.keys.last_resort_kem_prekey
            new = [k for k in refill.keys.kem_prekeys if k.id not in held]
            if last is not None and last.id not in held:
                self._db.execute(
                    "DELETE FROM kem_prekeys WHERE last_resort = 1 AND id NOT IN"
                    " (SELECT id FROM kem_prekeys WHERE last_resort = 1 ORDER BY id DESC LIMIT 1)"
                )
                new.append(last)
            self._db.executemany(
                "INSERT INTO kem_prekeys VALUES (?, ?, ?)",
                [(k.id, k.seed, int(k.last_resort)) for k in new],
            )
            self._db.execute(
                "INSERT INTO kem_prekey_ids VALUES (1, ?) ON CONFLICT (singleton) DO UPDATE"
                " SET next_id = excluded.next_id",
                (refill.next_id,),
            )

    def take_kem_prekey(self, prekey_id: int) -> None:
        """Delete a one-time KEM prekey a session used (never a last-resort one)."""
        with self.transaction():
            self._db.execute(
                "DELETE FROM kem_prekeys WHERE id = ? AND last_resort = 0", (prekey_id,)
            )

    def take_one_time_prekey(self, prekey_id: int) -> OneTimePrekey | None:
        """Remove and return a one-time prekey (each is used for one session only)."""
        with self.transaction():
            row = self._one("SELECT private_key FROM one_time_prekeys WHERE id = ?", (prekey_id,))
            if row is None:
                return None
            self._db.execute("DELETE FROM one_time_prekeys WHERE id = ?", (prekey_id,))
        return OneTimePrekey(id=prekey_id, key=X25519KeyPair.from_private(bytes(row[0])))

    # ------------------------------------------------------------ device lists

    def device_list(self, account_id: str) -> AcceptedList | None:
        row = self._one(
            "SELECT body, hash, accepted_at FROM device_lists WHERE account_id = ?", (account_id,)
        )
        if row is None:
            return None
        return AcceptedList(
            device_list=DeviceList.from_dict(json.loads(row[0])),
            hash=bytes(row[1]),
            accepted_at=row[2],
        )

    def known_devices(self, account_id: str) -> dict[str, bytes]:
        """Every device id ever accepted for the account (removed ones too) -> identity key."""
        return {
            device_id: bytes(key)
            for device_id, key in self._all(
                "SELECT device_id, identity_key FROM known_devices WHERE account_id = ?",
                (account_id,),
            )
        }

    def save_device_list(
        self, device_list: DeviceList, *, accepted_at: int | None = None
    ) -> AcceptedList:
        """Record a list the caller has verified (client.devicelists.accept_device_list);
        `accepted_at` is when the server last served it (a refetch of the same list too)."""
        accepted = AcceptedList(
            device_list=device_list,
            hash=device_list.hash,
            accepted_at=now_ms() if accepted_at is None else accepted_at,
        )
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO device_lists VALUES (?, ?, ?, ?, ?)",
                (
                    device_list.account_id,
                    device_list.version,
                    accepted.hash,
                    json.dumps(device_list.to_dict()),
                    accepted.accepted_at,
                ),
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO known_devices VALUES (?, ?, ?)",
                [
                    (device_list.account_id, d.device_id, d.identity_key)
                    for d in device_list.devices
                ],
            )
        return accepted

    # ------------------------------------------------------------ sessions

    def session(self, device_id: str) -> Session | None:
        row = self._one("SELECT state FROM sessions WHERE device_id = ?", (device_id,))
        return None if row is None else Session.from_dict(json.loads(row[0]))

    def save_session(self, *, account_id: str, device_id: str, session: Session) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?)",
                (device_id, account_id, json.dumps(session.to_dict()), now_ms()),
            )

    def delete_session(self, device_id: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM sessions WHERE device_id = ?", (device_id,))
            self._db.execute("DELETE FROM archived_sessions WHERE device_id = ?", (device_id,))

    def archived_sessions(self, device_id: str) -> list[tuple[int, Session]]:
        """The sessions with the device that newer ones replaced, the newest first, each
        with its id (for `replace_session(archived=)`)."""
        return [
            (row_id, Session.from_dict(json.loads(state)))
            for row_id, state in self._all(
                "SELECT id, state FROM archived_sessions WHERE device_id = ? ORDER BY id DESC",
                (device_id,),
            )
        ]

    def replace_session(
        self, *, account_id: str, device_id: str, session: Session, archived: int | None = None
    ) -> None:
        """Make `session` the current one with the device, archiving the one it replaces
        (the newest ARCHIVED_SESSIONS are kept); `archived`: the id of the archived session
        it was (one the other side kept using), which leaves the archive."""
        with self.transaction():
            if archived is not None:
                self._db.execute("DELETE FROM archived_sessions WHERE id = ?", (archived,))
            current = self._one("SELECT state FROM sessions WHERE device_id = ?", (device_id,))
            if current is not None:
                self._db.execute(
                    "INSERT INTO archived_sessions (device_id, state) VALUES (?, ?)",
                    (device_id, current[0]),
                )
                self._db.execute(
                    "DELETE FROM archived_sessions WHERE device_id = ? AND id NOT IN"
                    " (SELECT id FROM archived_sessions WHERE device_id = ?"
                    " ORDER BY id DESC LIMIT ?)",
                    (device_id, device_id, ARCHIVED_SESSIONS),
                )
            self.save_session(account_id=account_id, device_id=device_id, session=session)

    def session_device_ids(self, account_id: str) -> list[str]:
        return [
            row[0]
            for row in self._all(
                "SELECT device_id FROM sessions WHERE account_id = ? ORDER BY device_id",
                (account_id,),
            )
        ]

    # ------------------------------------------------------------ replay memory

    @property
    def used_base_keys(self) -> UsedBaseKeys:
        return UsedBaseKeys(self)

    def record_base_key(self, base_key: bytes) -> None:
        with self.transaction():
            self._db.execute("INSERT OR IGNORE INTO used_base_keys VALUES (?)", (base_key,))

    def remember_message(self, *, sender_device_id: str, message_id: bytes) -> bool:
        """Record a (sender device, message id) pair; False if it was already seen."""
        with self.transaction():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO seen_messages VALUES (?, ?, ?)",
                (sender_device_id, message_id, now_ms()),
            )
        return cursor.rowcount == 1

    # ------------------------------------------------------------ resend cache (24.3)

    def cache_sent(
        self,
        *,
        envelope_id: str,
        recipient: str,
        sent_at: int,
        targets: Mapping[str, str],
        resends: Mapping[str, int] | None = None,
    ) -> None:
        """Keep what an envelope carried to each device (call in the transaction that saves
        the sessions it advanced). The same envelope id again (a re-plan after
        mismatched_devices) replaces the targets and keeps the counts. The newest
        RESEND_CACHE_SIZE entries are kept, none older than RESEND_CACHE_MS."""
        with self.transaction():
            self._db.execute(
                "INSERT INTO resend_cache VALUES (?, ?, ?, ?, ?) ON CONFLICT (envelope_id)"
                " DO UPDATE SET recipient = excluded.recipient, targets = excluded.targets"
                + ("" if resends is None else ", resends = excluded.resends"),
                (
                    envelope_id,
                    recipient,
                    sent_at,
                    json.dumps(dict(targets)),
                    json.dumps(dict(resends or {})),
                ),
            )
            self._db.execute(
                "DELETE FROM resend_cache WHERE sent_at < ?", (now_ms() - RESEND_CACHE_MS,)
            )
            self._db.execute(
                "DELETE FROM resend_cache WHERE rowid NOT IN"
                " (SELECT rowid FROM resend_cache ORDER BY rowid DESC LIMIT ?)",
                (RESEND_CACHE_SIZE,),
            )

    def cached_send(self, envelope_id: str) -> CachedSend | None:
        row = self._one(
            "SELECT recipient, sent_at, targets, resends FROM resend_cache WHERE envelope_id = ?",
            (envelope_id,),
        )
        if row is None:
            return None
        recipient, sent_at, targets, resends = row
        return CachedSend(envelope_id, recipient, sent_at, json.loads(targets), json.loads(resends))

    def count_resend(self, envelope_id: str, device_id: str, count: int) -> None:
        """The entry's content went to `device_id` again: its count is now `count`."""
        with self.transaction():
            row = self._one(
                "SELECT resends FROM resend_cache WHERE envelope_id = ?", (envelope_id,)
            )
            if row is None:
                return
            resends = {**json.loads(row[0]), device_id: count}
            self._db.execute(
                "UPDATE resend_cache SET resends = ? WHERE envelope_id = ?",
                (json.dumps(resends), envelope_id),
            )

    # ------------------------------------------------------------ retry records (24.2)

    def retries(self) -> dict[str, RetryRecord]:
        """Every retry record held (waiting or failed), by its key (sender device/envelope)."""
        records = (
            RetryRecord.from_dict(json.loads(row[0]))
            for row in self._all("SELECT body FROM retries")
        )
        return {r.key: r for r in sorted(records, key=lambda r: r.key)}

    def save_retry(self, record: RetryRecord) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO retries VALUES (?, ?, ?)",
                (record.sender_device, record.envelope_id, json.dumps(record.to_dict())),
            )

    def forget_retry(self, sender_device: str, envelope_id: str) -> None:
        with self.transaction():
            self._db.execute(
                "DELETE FROM retries WHERE sender_device = ? AND envelope_id = ?",
                (sender_device, envelope_id),
            )

    # ------------------------------------------------------------ server cookies

    def server_cookies(self) -> list[dict[str, Any]]:
        """The HTTP cookies (Django session) kept between runs, like a browser's cookie jar."""
        row = self._one("SELECT body FROM server_cookies")
        return [] if row is None else json.loads(row[0])

    def save_server_cookies(self, cookies: list[dict[str, Any]]) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO server_cookies VALUES (1, ?)", (json.dumps(cookies),)
            )

    # ------------------------------------------------------------ account sync

    def sync_state(self) -> SyncState | None:
        """The sync machine's state as it last said to store it (None before the first)."""
        row = self._one("SELECT body FROM sync_state")
        return None if row is None else SyncState.from_dict(json.loads(row[0]))

    def save_sync_state(self, state: SyncState) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO sync_state VALUES (1, ?)", (json.dumps(state.to_dict()),)
            )

    # ------------------------------------------------------------ groups

    def group_record(self, group_id: str) -> GroupRecord | None:
        """The group machine's record of the group (its id in base64url), as last stored."""
        row = self._one("SELECT body FROM groups WHERE group_id = ?", (group_id,))
        return None if row is None else GroupRecord.from_dict(json.loads(row[0]))

    def group_records(self) -> list[GroupRecord]:
        rows = self._all("SELECT body FROM groups ORDER BY group_id")
        return [GroupRecord.from_dict(json.loads(body)) for (body,) in rows]

    def save_group_record(self, record: GroupRecord) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO groups VALUES (?, ?)",
                (b64u_encode(record.group_id), json.dumps(record.to_dict())),
            )

    # ------------------------------------------------------------ messages

    def save_message(self, record: Mapping[str, Any], *, read: bool) -> bool:
        """Keep a message (the engine's record, section 22.3); False if it was kept before."""
        with self.transaction():
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record["author"],
                    record["id"],
                    record["conversation"],
                    record.get("author_device"),
                    record["kind"],
                    bool(record["outgoing"]),
                    record.get("text") or "",
                    record["timestamp"],
                    record.get("content_type"),
                    read,
                ),
            )
        return cursor.rowcount == 1

    def messages(self, conversation: str) -> list[dict[str, Any]]:
        """The conversation's messages in time order, as records with `read`."""
        rows = self._all(
            "SELECT author, id, conversation, author_device, kind, outgoing, text, timestamp,"
            " content_type, read FROM messages WHERE conversation = ?"
            " ORDER BY timestamp, rowid",
            (conversation,),
        )
        keys = MESSAGE_FIELDS
        return [
            {**dict(zip(keys, row, strict=True)), "outgoing": bool(row[5]), "read": bool(row[9])}
            for row in rows
        ]

    def conversations(self) -> list[str]:
        """Every peer with a message, the most recent conversation first."""
        rows = self._all(
            "SELECT conversation FROM messages GROUP BY conversation"
            " ORDER BY MAX(timestamp) DESC, conversation"
        )
        return [row[0] for row in rows]

    def mark_read(self, conversation: str, message_ids: Iterable[str]) -> int:
        """Mark the conversation's incoming messages with these ids read here; how many were not."""
        ids = list(message_ids)
        with self.transaction():
            cursor = self._db.executemany(
                "UPDATE messages SET read = 1 WHERE conversation = ? AND id = ? AND NOT outgoing"
                " AND NOT read",
                [(conversation, m) for m in ids],
            )
        return cursor.rowcount

    # ------------------------------------------------------------ display names

    def display_name(self, username: str) -> str | None:
        """The display name last fetched for the account ("" when it has none); None: never."""
        row = self._one("SELECT display_name FROM display_names WHERE username = ?", (username,))
        return None if row is None else str(row[0])

    def save_display_name(self, username: str, display_name: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO display_names VALUES (?, ?, ?)",
                (username, display_name, now_ms()),
            )
