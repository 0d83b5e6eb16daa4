"""A throwaway PostgreSQL server (Debian's postgresql) in its own temporary data directory on
a free loopback port, fsync optional: the tests' fast cluster (`make cluster` keeps its data,
scripts/cluster.py)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scripts.cluster import as_postgres as _as_postgres
from scripts.cluster import postgres_bin as _bin
from tests.support.ports import free_port, wait_for_port


@dataclass
class PostgresServer:
    port: int
    datadir: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"postgres://parley@127.0.0.1:{self.port}/parley"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        shutil.rmtree(self.datadir, ignore_errors=True)


def start_postgres(workdir: Path, *, durable: bool = True) -> PostgresServer:
    """`durable=False` turns fsync off: for throwaway test clusters only."""
    if os.geteuid() == 0:
        # The postgres user cannot enter root's private temp directories: give it its own.
        datadir = Path(tempfile.mkdtemp(prefix="parley-pg-")) / "pgdata"
        datadir.mkdir()
        uid = pwd.getpwnam("postgres").pw_uid
        for path in (datadir.parent, datadir):
            os.chown(path, uid, -1)
    else:
        datadir = workdir / "pgdata"
        datadir.mkdir(parents=True)
    subprocess.run(
        _as_postgres(
            [
                _bin("initdb"),
                "-D",
                str(datadir),
                "-U",
                "parley",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    process = subprocess.Popen(
        _as_postgres(
            [
                _bin("postgres"),
                "-D",
                str(datadir),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={datadir}",
                "-c",
                f"fsync={'on' if durable else 'off'}",
                "-c",
                "max_connections=200",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, timeout=30)
    for _attempt in range(50):
        created = subprocess.run(
            [_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "parley", "parley"],
            capture_output=True,
        )
        if created.returncode == 0:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError(f"createdb failed: {created.stderr.decode()}")
    return PostgresServer(port=port, datadir=datadir, process=process)
