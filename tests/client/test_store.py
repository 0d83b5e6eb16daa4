"""The device's local store: state survives a restart (reopening the file), sessions carry
on where they stopped, and the replay memory and trust state refuse what they must."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from client.devicelists import accept_device_list
from client.store import SCHEMA_VERSION, OwnDevice, Store, StoreError, default_store_path, now_ms
from protocol import devicelist as dl
from protocol.exceptions import DeviceKeyChanged, ReplayDetected, StaleDeviceList
from protocol.inbound import accept_prekey_message
from protocol.keys import generate_device_keys, make_prekey_bundle
from protocol.ratchet import Session
from protocol.rng import TestRng

ACCOUNT = "alice"


def rng(name: str) -> TestRng:
    return TestRng(name.encode().ljust(32, b"\0"))


def make_device(name: str = "laptop", *, primary_seed: str = "primary") -> OwnDevice:
    primary = generate_device_keys(rng(primary_seed))
    keys = generate_device_keys(rng(name), signed_prekey_id=7, one_time_prekey_ids=[1, 2, 3])
    return OwnDevice(
        device_id=f"{name}-device-id-0000",
        name=name,
        server="http://localhost:8000",
        account_id=ACCOUNT,
        account_key=primary.identity.public,
        keys=keys,
        linked_at=1_700_000_000_000,
    )


def signed_list(version: int, *entries: tuple[str, str]) -> dl.DeviceList:
    """A list signed by the "primary" key holding the primary and the named companions."""
    primary = generate_device_keys(rng("primary")).identity
    devices = [dl.DeviceEntry("primary-device-id-00", primary.public, 1)]
    for device_id, seed in entries:
        key = generate_device_keys(rng(seed)).identity
        signature = dl.sign_device(key, account_id=ACCOUNT, account_key=primary.public)
        devices.append(dl.DeviceEntry(device_id, key.public, 2, signature))
    return dl.sign_device_list(
        primary, account_id=ACCOUNT, version=version, timestamp=version, devices=devices
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "parley" / "device.sqlite3"


def test_store_file_is_private_to_its_owner(path):
    Store.open(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_default_path_is_per_server_host():
    assert default_store_path("https://parley.example").name == "parley.example.sqlite3"
    assert default_store_path("http://localhost:8000").name == "localhost_8000.sqlite3"
    assert default_store_path("http://localhost:8000").parent.name == ".parley"


def test_device_and_its_private_keys_survive_a_restart(path):
    device = make_device()
    with Store.open(path) as store:
        assert store.device() is None
        store.save_device(device)
    with Store.open(path) as store:
        assert store.device() == device
        assert store.device().keys.to_dict() == device.keys.to_dict()


def test_a_store_holds_one_device(path):
    with Store.open(path) as store:
        store.save_device(make_device())
        with pytest.raises(StoreError, match="already holds device laptop-device-id-0000"):
            store.save_device(make_device("desktop"))


def test_one_time_prekey_is_taken_once_and_stays_taken_after_restart(path):
    with Store.open(path) as store:
        store.save_device(make_device())
        taken = store.take_one_time_prekey(2)
        assert taken is not None and taken.id == 2
        assert store.take_one_time_prekey(2) is None
    with Store.open(path) as store:
        assert [k.id for k in store.device().keys.one_time_prekeys] == [1, 3]


def test_a_failed_transaction_leaves_nothing_behind(path):
    with Store.open(path) as store:
        store.save_device(make_device())
        with pytest.raises(RuntimeError), store.transaction():
            store.take_one_time_prekey(1)
            store.record_base_key(b"k" * 32)
            raise RuntimeError("crash between two writes")
        assert [k.id for k in store.one_time_prekeys()] == [1, 2, 3]
        assert b"k" * 32 not in store.used_base_keys


def test_accepted_device_list_is_remembered_for_rollback_and_key_change_checks(path):
    account_key = generate_device_keys(rng("primary")).identity.public
    v2 = signed_list(2, ("laptop-device-id-0000", "laptop"))
    with Store.open(path) as store:
        accept_device_list(store, v2, expected_account_key=account_key)
    with Store.open(path) as store:
        accepted = store.device_list(ACCOUNT)
        assert (accepted.version, accepted.hash) == (2, v2.hash)
        assert accepted.device_list == v2
        assert set(store.known_devices(ACCOUNT)) == {
            "primary-device-id-00",
            "laptop-device-id-0000",
        }
        # the same list again is not a rollback
        assert accept_device_list(store, v2, expected_account_key=account_key).hash == v2.hash
        with pytest.raises(StaleDeviceList):
            accept_device_list(
                store,
                signed_list(1, ("laptop-device-id-0000", "laptop")),
                expected_account_key=account_key,
            )
        # a removed device stays known: it cannot come back with another key
        accept_device_list(store, signed_list(3), expected_account_key=account_key)
        with pytest.raises(DeviceKeyChanged):
            accept_device_list(
                store,
                signed_list(4, ("laptop-device-id-0000", "impostor")),
                expected_account_key=account_key,
            )
        assert store.device_list(ACCOUNT).version == 3


def test_sessions_continue_after_a_restart(path):
    """Alice's session is saved and reloaded between every message; Bob keeps his in memory."""
    bob = generate_device_keys(rng("bob"), signed_prekey_id=1, one_time_prekey_ids=[5])
    alice = make_device("alice")
    bundle = make_prekey_bundle("bob-device-id-00000", bob, bob.one_time_prekeys[0])
    rand = rng("conversation")
    with Store.open(path) as store:
        store.save_device(alice)
        session = Session.initiate(
            identity=alice.keys.identity,
            bundle=bundle,
            listed_identity_key=bob.identity.public,
            rng=rand,
        )
        first = session.encrypt(b"hello", rand)
        store.save_session(account_id="bob", device_id="bob-device-id-00000", session=session)
    inbound = accept_prekey_message(
        first,
        identity=bob.identity,
        signed_prekeys={1: bob.signed_prekey.key},
        one_time_prekeys={5: bob.one_time_prekeys[0].key},
        sender_identity_key=alice.keys.identity.public,
        used_base_keys=set(),
        rng=rand,
    )
    bob_session = inbound.session
    assert inbound.plaintext == b"hello"
    for n in range(3):
        reply = bob_session.encrypt(f"reply {n}".encode(), rand)
        with Store.open(path) as store:
            session = store.session("bob-device-id-00000")
            assert session.decrypt(reply, rand) == f"reply {n}".encode()
            follow_up = session.encrypt(f"ack {n}".encode(), rand)
            store.save_session(account_id="bob", device_id="bob-device-id-00000", session=session)
        assert bob_session.decrypt(follow_up, rand) == f"ack {n}".encode()
    with Store.open(path) as store:
        assert store.session_device_ids("bob") == ["bob-device-id-00000"]
        store.delete_session("bob-device-id-00000")
        assert store.session("bob-device-id-00000") is None


def test_used_base_keys_refuse_a_replayed_prekey_message_after_restart(path):
    bob = make_device("bob")
    alice = generate_device_keys(rng("alice"))
    rand = rng("replay")
    bundle = make_prekey_bundle(bob.device_id, bob.keys, bob.keys.one_time_prekeys[0])
    message = Session.initiate(
        identity=alice.identity,
        bundle=bundle,
        listed_identity_key=bob.keys.identity.public,
        rng=rand,
    ).encrypt(b"once", rand)

    def receive(store: Store) -> bytes:
        keys = store.device().keys
        inbound = accept_prekey_message(
            message,
            identity=keys.identity,
            signed_prekeys={k.id: k.key for k in store.signed_prekeys()},
            one_time_prekeys={k.id: k.key for k in keys.one_time_prekeys},
            sender_identity_key=alice.identity.public,
            used_base_keys=store.used_base_keys,
            rng=rand,
        )
        with store.transaction():
            store.record_base_key(inbound.base_key)
            store.take_one_time_prekey(inbound.one_time_prekey_id)
            store.save_session(
                account_id="alice", device_id="alice-device", session=inbound.session
            )
        return inbound.plaintext

    with Store.open(path) as store:
        store.save_device(bob)
        assert receive(store) == b"once"
    with Store.open(path) as store, pytest.raises(ReplayDetected):
        receive(store)


def test_seen_message_ids_deduplicate_per_sender_across_restarts(path):
    with Store.open(path) as store:
        assert store.remember_message(sender_device_id="a", message_id=b"1" * 16)
        assert not store.remember_message(sender_device_id="a", message_id=b"1" * 16)
        assert store.remember_message(sender_device_id="b", message_id=b"1" * 16)
    with Store.open(path) as store:
        assert not store.remember_message(sender_device_id="a", message_id=b"1" * 16)


def test_server_cookies_are_kept_between_runs(path):
    cookies = [
        {
            "name": "sessionid",
            "value": "abc",
            "domain": "localhost.local",
            "path": "/",
            "secure": False,
            "expires": None,
        }
    ]
    with Store.open(path) as store:
        store.save_server_cookies(cookies)
    with Store.open(path) as store:
        assert store.server_cookies() == cookies


def test_wipe_deletes_the_file(path):
    store = Store.open(path)
    store.save_device(make_device())
    store.wipe()
    assert not path.exists()
    with Store.open(path) as fresh:
        assert fresh.device() is None


def test_a_newer_schema_is_refused(path):
    import sqlite3

    Store.open(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer than this client"):
        Store.open(path)


def test_the_synced_state_survives_a_restart_with_its_keys_and_pending_changes(path):
    from protocol.engine import SyncFetchWanted, SyncMutated, SyncState, handle_sync

    state = SyncState(ACCOUNT, "laptop-device-id-0000")
    contact = {"account_key": "A" * 43, "added_at": 5, "nickname": ""}
    state, _ = handle_sync(state, SyncMutated((("contacts", ("bob",), contact),), 7, bytes(32)))
    state, _ = handle_sync(state, SyncFetchWanted(None, 8, bytes(32)))
    assert state.pending and state.request is not None
    with Store.open(path) as store:
        assert store.sync_state() is None
        store.save_sync_state(state)
    with Store.open(path) as store:
        assert store.sync_state() == state


def test_a_store_of_the_schema_before_sync_gets_its_sync_table_and_keeps_its_device(path):
    import sqlite3

    from protocol.engine import SyncState

    with Store.open(path) as store:
        store.save_device(make_device())
    with sqlite3.connect(path) as db:  # as a client of schema 3 left the file
        for table in (
            "sync_state",
            "messages",
            "display_names",
            "resend_cache",
            "retries",
            "groups",
            "kem_prekeys",
            "kem_prekey_ids",
        ):
            db.execute(f"DROP TABLE {table}")
        db.execute("DROP TABLE archived_sessions")
        db.execute(
            "CREATE TABLE previous_sessions (device_id TEXT PRIMARY KEY, state TEXT NOT NULL)"
        )
        db.execute("PRAGMA user_version = 3")
    with Store.open(path) as store:
        device = store.device()
        assert device is not None and device.device_id == "laptop-device-id-0000"
        assert store.sync_state() is None
        store.save_sync_state(SyncState(ACCOUNT, device.device_id))
        assert store.sync_state() == SyncState(ACCOUNT, device.device_id)
        assert store.retries() == {} and store.cached_send("any") is None
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_the_resend_cache_keeps_the_newest_256_entries_of_the_last_24_hours(path):
    """docs/protocol.md 24.3: bounded by count and by age, counts kept across a re-plan."""
    from protocol.engine import RESEND_CACHE_MS, RESEND_CACHE_SIZE

    now = now_ms()
    with Store.open(path) as store:
        store.cache_sent(
            envelope_id="old", recipient="bob", sent_at=now - RESEND_CACHE_MS - 1, targets={}
        )
        store.cache_sent(envelope_id="e0", recipient="bob", sent_at=now, targets={"d1": "AA"})
        assert store.cached_send("old") is None  # older than a day: gone with the next write
        store.count_resend("e0", "d1", 2)
        store.cache_sent(envelope_id="e0", recipient="bob", sent_at=now, targets={"d2": "AQ"})
        entry = store.cached_send("e0")
        assert entry is not None
        assert entry.targets == {"d2": "AQ"} and entry.resends == {"d1": 2}
        for n in range(1, RESEND_CACHE_SIZE + 1):
            store.cache_sent(envelope_id=f"e{n}", recipient="bob", sent_at=now, targets={})
    with Store.open(path) as store:  # kept across a restart, the oldest one dropped
        assert store.cached_send("e0") is None
        assert store.cached_send("e1") is not None
        assert store.cached_send(f"e{RESEND_CACHE_SIZE}") is not None


def test_retry_records_survive_a_restart_and_are_forgotten_one_by_one(path):
    from protocol.engine import RetryRecord

    waiting = RetryRecord("bob", "bob-phone", "env-1", 10, 1, 20)
    failed = RetryRecord("bob", "bob-laptop", "env-2", 11, 5, 30, "failed")
    with Store.open(path) as store:
        store.save_retry(waiting)
        store.save_retry(failed)
    with Store.open(path) as store:
        assert store.retries() == {waiting.key: waiting, failed.key: failed}
        store.forget_retry("bob-phone", "env-1")
        assert store.retries() == {failed.key: failed}


def test_replaced_sessions_are_archived_ten_deep_and_one_used_again_leaves_the_archive(path):
    from client.store import ARCHIVED_SESSIONS

    bob = generate_device_keys(rng("bob"), signed_prekey_id=1)
    alice = make_device("alice")
    bundle = make_prekey_bundle("bob-device-id-00000", bob, None)
    rand = rng("sessions")

    def new_session() -> Session:
        return Session.initiate(
            identity=alice.keys.identity,
            bundle=bundle,
            listed_identity_key=bob.identity.public,
            rng=rand,
        )

    made = [new_session() for _ in range(ARCHIVED_SESSIONS + 2)]
    with Store.open(path) as store:
        for session in made:
            store.replace_session(
                account_id="bob", device_id="bob-device-id-00000", session=session
            )
    with Store.open(path) as store:
        archived = store.archived_sessions("bob-device-id-00000")
        assert [s.base_key for _, s in archived] == [
            s.base_key for s in reversed(made[1:-1])
        ]  # the newest first, the oldest beyond ten gone
        row_id, oldest = archived[-1]
        store.replace_session(
            account_id="bob", device_id="bob-device-id-00000", session=oldest, archived=row_id
        )
        assert store.session("bob-device-id-00000").base_key == made[1].base_key
        again = [s.base_key for _, s in store.archived_sessions("bob-device-id-00000")]
        assert again[0] == made[-1].base_key and made[1].base_key not in again
        store.delete_session("bob-device-id-00000")
        assert store.archived_sessions("bob-device-id-00000") == []


def test_kem_prekeys_are_kept_as_seeds_a_used_one_time_one_goes_and_the_last_resort_one_stays(
    path,
):
    from dataclasses import replace

    from protocol.keys import plan_kem_refill
    from protocol.rng import system_rng

    with Store.open(path) as store:
        store.save_device(make_device())
        identity = store.device().keys.identity
        plan = plan_kem_refill(
            store.device_keys(identity),
            stored=0,
            last_resort_stored=None,
            next_id=store.next_kem_prekey_id(),
            target=3,
            rng=system_rng,
        )
        store.save_kem_refill(plan)
    with Store.open(path) as store:  # kept across a restart
        held = store.kem_prekeys(identity)
        assert sorted(held) == [1, 2, 3, 4] and held[1].last_resort
        assert store.device().keys == plan.keys
        assert store.next_kem_prekey_id() == 5
        store.take_kem_prekey(2)
        store.take_kem_prekey(1)  # a last-resort key is never taken
        assert sorted(store.kem_prekeys(identity)) == [1, 3, 4]
        # a new last-resort key: the one before it is kept too, for sessions that name it
        keys = store.device_keys(identity)
        renewed = plan_kem_refill(
            replace(keys, last_resort_kem_prekey=None),  # as if it had none
            stored=2,
            last_resort_stored=1,
            next_id=store.next_kem_prekey_id(),
            target=3,
            rng=system_rng,
        )
        store.save_kem_refill(renewed)
        assert store.device_keys(identity).last_resort_kem_prekey.id == 5
        assert {i for i, k in store.kem_prekeys(identity).items() if k.last_resort} == {1, 5}
