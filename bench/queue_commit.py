"""Server CPU of one send's group commit and one ack's, on the event loop's own SQLite
connection (messaging/queue_db.py) against a hop to Django's database thread.

    python bench/queue_commit.py [--sends 2000]

In one process, no sockets: a fresh SQLite file (WAL, as the app sets it), two accounts of
one device each; each send goes through `messaging.delivery.accept` (the writer the consumer
uses) and is awaited before the next, so every send is a transaction of its own, as for one
pair of devices at a time; then every row is acked the same way. CPU time from
`time.process_time`, over both threads.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=2000)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="parley-bench-")
    os.environ.update(
        DATABASE_URL=f"sqlite:///{directory}/db.sqlite3",
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY="bench",
        PARLEY_QUEUE_LIMIT="100000000",
    )
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import User
    from devices.models import Device
    from messaging import delivery
    from messaging.schemas import SendRequest

    call_command("migrate", verbosity=0)
    now = timezone.now()
    for username, device_id in (("alice", "da"), ("bob", "db")):
        Device.objects.create(
            id=device_id,
            user=User.objects.create(username=username),
            identity_key=os.urandom(32),
            name=device_id,
            added_at=now,
            last_seen_on=now.date(),
        )
    ciphertext = os.urandom(300)

    async def one_way(tag: str) -> tuple[float, float]:
        started = time.process_time()
        for n in range(args.sends):
            send = SendRequest(envelope_id=f"{tag}{n}", recipient="bob", targets={"db": ciphertext})
            await delivery.accept(device_id="da", send=send)
        sent = time.process_time()
        rows = await delivery.batch(device_id="db", after_seq=0, limit=args.sends)
        acked_from = time.process_time()
        for row in rows:
            await delivery.ack(device_id="db", seqs=[row.seq])
        acked = time.process_time()
        return (sent - started) / args.sends, (acked - acked_from) / len(rows)

    for inline in (False, True, False, True):
        settings.PARLEY_INLINE_SQLITE = inline
        send, ack = asyncio.run(one_way(f"{int(inline)}{time.monotonic_ns()}-"))
        where = "on the loop's own connection" if inline else "in Django's thread"
        print(f"{where:30}  send {send * 1e6:5.0f} µs CPU   ack {ack * 1e6:5.0f} µs CPU")


if __name__ == "__main__":
    main()
