"""`make cluster`: PostgreSQL, Redis and two Daphne nodes on this machine (loopback only),
each in its own directory under var/cluster/. Ctrl-C stops everything.

Any device may use either node; a load balancer in front would hand out both.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.cluster import start_cluster  # noqa: E402


def main() -> None:
    workdir = ROOT / "var" / "cluster"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    print("Starting PostgreSQL, Redis and two Daphne nodes…", flush=True)
    cluster = start_cluster(workdir, nodes=2)
    print(f"PostgreSQL  {cluster.postgres.url}")
    print(f"Redis       {cluster.redis.url}")
    for n, node in enumerate(cluster.nodes):
        print(f"node {n}      {node.url}   (log: {node.log_path})")
    print(
        "Note: each node is its own origin; passkeys are bound to one origin, so use one node per browser (or put both behind one load-balanced origin and set PARLEY_ORIGIN)."
    )
    print("Ctrl-C stops the cluster.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while all(node.process.poll() is None for node in cluster.nodes):
            time.sleep(0.5)
        print("A node exited; stopping the cluster.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
