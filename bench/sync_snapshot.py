"""Account state sync in Python: a 10,000-mutation snapshot applied on a new device.

Run alone: .venv/bin/python bench/sync_snapshot.py [--mutations 10000] [--runs 5]

The state is 10,000 records of the shapes the app syncs (contacts, conversations, settings),
written as patches of 100 and compacted into one snapshot; a new device applies it with
apply_entry: decode, MAC, 10,000 decryptions, parses and index checks, and the LtHash.
Wall-clock and process CPU time per run; the target is under 1 s (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocol.accountstate import AccountState, apply_entry, build_patch, build_snapshot  # noqa: E402
from protocol.rng import system_rng  # noqa: E402
from protocol.syncentry import Mutation, new_sync_key  # noqa: E402

T0 = 1_700_000_000_000


def mutation(i: int) -> Mutation:
    """One of three record shapes, each about the size the app writes."""
    if i % 3 == 0:
        value = {"nickname": f"Friend {i}", "verified": i % 2 == 0, "added_at": T0 + i}
        return Mutation("contacts", ("contact", f"user-{i:06d}"), value, T0 + i, "dev-phone")
    if i % 3 == 1:
        value = {
            "archived": False,
            "muted": False,
            "pinned": False,
            "read_up_to": T0 + i,
            "unread": i % 7,
        }
        return Mutation(
            "conversations", ("conversation", f"user-{i:06d}"), value, T0 + i, "dev-laptop"
        )
    return Mutation("settings", ("setting", f"s{i}"), {"enabled": True}, T0 + i, "dev-phone")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mutations", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    key = new_sync_key(system_rng, since_version=1)
    state = AccountState()
    for start in range(0, args.mutations, 100):
        batch = [mutation(i) for i in range(start, min(start + 100, args.mutations))]
        state = build_patch(state, batch, version=state.version + 1, key=key, rng=system_rng).state
    snapshot = build_snapshot(state, version=state.version + 1, key=key, rng=system_rng)
    walls, cpus = [], []
    for _ in range(args.runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fresh = apply_entry(AccountState(), snapshot.blob, version=snapshot.version, keys=[key])
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert fresh.records == state.records and fresh.hash == state.hash
    print(f"snapshot of {len(state.records)} records, {len(snapshot.blob)} bytes")
    print(
        f"apply on a new device: wall median {statistics.median(walls):.3f} s "
        f"(best {min(walls):.3f}), cpu median {statistics.median(cpus):.3f} s, {args.runs} runs"
    )


if __name__ == "__main__":
    main()
