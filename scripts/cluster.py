"""`make cluster`: the scale-out setup of docs/operations.md on this machine, with production
settings. PostgreSQL (data kept in var/cluster/pgdata across restarts), Redis, and two
Daphne nodes with DEBUG=0, a generated secret key (var/cluster/secret) and the real rate
limits, on fixed loopback ports. Ctrl-C (SIGINT) or SIGTERM stops everything.

Each node is its own origin (http://localhost:8001, http://localhost:8002): passkeys and a
browser's keys belong to the origin they were made on. Ports and the directory can be
changed by option or environment variable (`--help`); `--wipe` deletes the data.
"""

from __future__ import annotations

import argparse
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "var" / "cluster"
DEFAULT_POSTGRES_PORT = 5433
DEFAULT_REDIS_PORT = 6380
DEFAULT_NODE_PORTS = (8001, 8002)
JOBS_EVERY_SECONDS = 300
JOBS = ("expire_devices", "expire_envelopes")


class ClusterError(Exception):
    """A reason the cluster cannot start, printed as is."""


def postgres_bin(name: str) -> str:
    """A program of Debian's newest installed PostgreSQL."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise ClusterError("PostgreSQL is not installed (Debian: apt-get install postgresql).")
    return found[-1]


def as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` system user when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


@dataclass
class Settings:
    directory: Path
    postgres_port: int
    redis_port: int
    node_ports: tuple[int, ...]

    @property
    def pgdata(self) -> Path:
        return self.directory / "pgdata"

    @property
    def database_url(self) -> str:
        return f"postgres://parley@127.0.0.1:{self.postgres_port}/parley"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def origins(self) -> list[str]:
        # `localhost`, not 127.0.0.1: WebAuthn refuses IP-address origins.
        return [f"http://localhost:{port}" for port in self.node_ports]


@dataclass
class Cluster:
    settings: Settings
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self) -> None:
        self._check_ports_free()
        self.start_stores()
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
            cwd=ROOT,
            env=self.node_env(self.settings.node_ports[0]),
            check=True,
        )
        for n, port in enumerate(self.settings.node_ports):
            self._start_node(n, port)

    def start_stores(self) -> None:
        """PostgreSQL (its data kept in the directory) and Redis; deploy/local.py starts these
        too, for its own nodes."""
        self._start_postgres()
        self._start_redis()

    def node_env(self, port: int) -> dict[str, str]:
        """The environment of the node on `port`: production settings (docs/operations.md)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DEBUG": "0",
                "SECRET_KEY": self.secret_key(),
                "DATABASE_URL": self.settings.database_url,
                "REDIS_URL": self.settings.redis_url,
                "ALLOWED_HOSTS": "localhost,127.0.0.1",
                "PARLEY_ORIGIN": f"http://localhost:{port}",
                "PARLEY_DEPLOYMENT_ORIGINS": ",".join(self.settings.origins),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def run_jobs(self) -> None:
        """The periodic jobs of docs/operations.md, run once for the whole cluster."""
        with (self.settings.directory / "jobs.log").open("ab") as log:
            for job in JOBS:
                subprocess.run(
                    [sys.executable, "manage.py", job],
                    cwd=ROOT,
                    env=self.node_env(self.settings.node_ports[0]),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=False,
                )

    def exited(self) -> str | None:
        for name, process in self.processes:
            if process.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        """Nodes first, then Redis, then PostgreSQL (a fast shutdown: it checkpoints and
        keeps every committed transaction)."""
        for name, process in reversed(self.processes):
            if process.poll() is None:
                if name == "PostgreSQL":
                    subprocess.run(
                        as_postgres(
                            [postgres_bin("pg_ctl"), "stop", "-D", str(self.settings.pgdata)]
                            + ["-m", "fast", "-s"]
                        ),
                        check=False,
                    )
                else:
                    process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    # ------------------------------------------------------------ parts

    def _check_ports_free(self) -> None:
        s = self.settings
        for what, port in [
            ("PostgreSQL", s.postgres_port),
            ("Redis", s.redis_port),
            *((f"node {n}", p) for n, p in enumerate(s.node_ports)),
        ]:
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise ClusterError(
                        f"Port {port} (for {what}) is in use. Stop what holds it, or choose "
                        "other ports (scripts/cluster.py --help)."
                    ) from None

    def secret_key(self) -> str:
        """Generated on the first start into the directory (mode 0600), then kept."""
        path = self.settings.directory / "secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(50) + "\n")
            path.chmod(0o600)
        return path.read_text().strip()

    def _start_postgres(self) -> None:
        s = self.settings
        if not (s.pgdata / "PG_VERSION").exists():
            self._init_postgres()
        log = (s.directory / "postgres.log").open("ab")
        process = subprocess.Popen(
            as_postgres(
                [
                    postgres_bin("postgres"),
                    "-D",
                    str(s.pgdata),
                    "-p",
                    str(s.postgres_port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "max_connections=200",
                ]
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(("PostgreSQL", process))
        _wait_for_port(s.postgres_port, process, "PostgreSQL", s.directory / "postgres.log")
        query = "SELECT 1 FROM pg_database WHERE datname = 'parley'"
        deadline = time.monotonic() + 30
        while True:  # it listens before it accepts ("the database system is starting up")
            listed = subprocess.run(
                [postgres_bin("psql"), "-h", "127.0.0.1", "-p", str(s.postgres_port)]
                + ["-U", "parley", "-d", "postgres", "-tAc", query],
                capture_output=True,
                text=True,
            )
            if listed.returncode == 0:
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise ClusterError(f"PostgreSQL does not answer: {listed.stderr.strip()}")
            time.sleep(0.2)
        if listed.stdout.strip() != "1":
            subprocess.run(
                [postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(s.postgres_port)]
                + ["-U", "parley", "parley"],
                check=True,
            )

    def _init_postgres(self) -> None:
        pgdata = self.settings.pgdata
        pgdata.mkdir(mode=0o700, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(pgdata, pwd.getpwnam("postgres").pw_uid, -1)
            reachable = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", pgdata])
            if reachable.returncode != 0:
                raise ClusterError(
                    f"The postgres user cannot reach {pgdata} (a parent directory is private). "
                    "Choose a directory it can reach with --dir."
                )
        subprocess.run(
            as_postgres(
                [postgres_bin("initdb"), "-D", str(pgdata), "-U", "parley"]
                + ["--auth=trust", "-E", "UTF8"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ClusterError("redis-server is not installed (Debian: apt-get install redis).")
        workdir = self.settings.directory / "redis"
        workdir.mkdir(exist_ok=True)
        # Redis is a doorbell and the rate-limit counters: nothing in it needs to survive.
        process = subprocess.Popen(
            [binary, "--port", str(self.settings.redis_port), "--bind", "127.0.0.1"]
            + ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
            + ["--logfile", str(workdir / "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(("Redis", process))
        _wait_for_port(self.settings.redis_port, process, "Redis", workdir / "redis.log")

    def _start_node(self, n: int, port: int) -> None:
        workdir = self.settings.directory / f"node{n}"
        workdir.mkdir(exist_ok=True)
        log_path = workdir / "daphne.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "web.serve", "-b", "127.0.0.1", "-p", str(port)]
            + ["config.asgi:application"],
            cwd=ROOT,
            env=self.node_env(port),
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((f"node {n}", process))
        _wait_for_http(f"http://127.0.0.1:{port}/healthz", process, f"node {n}", log_path)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"{what} exited at start; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise ClusterError(f"{what} did not listen on 127.0.0.1:{port} within 30 s; see {log}")


def _wait_for_http(url: str, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"{what} exited at start; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise ClusterError(f"{what} did not answer {url} within 30 s; see {log}")


def _ports(text: str) -> tuple[int, ...]:
    ports = tuple(int(p) for p in text.split(",") if p.strip())
    if not ports:
        raise argparse.ArgumentTypeError("expected one or more ports, e.g. 8001,8002")
    return ports


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="scripts/cluster.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(env("PARLEY_CLUSTER_DIR", str(DEFAULT_DIR))),
        help="data, secret and logs (PARLEY_CLUSTER_DIR; default var/cluster)",
    )
    parser.add_argument(
        "--postgres-port",
        type=int,
        default=int(env("PARLEY_CLUSTER_POSTGRES_PORT", DEFAULT_POSTGRES_PORT)),
        help=f"PostgreSQL's port (PARLEY_CLUSTER_POSTGRES_PORT; default {DEFAULT_POSTGRES_PORT})",
    )
    parser.add_argument(
        "--redis-port",
        type=int,
        default=int(env("PARLEY_CLUSTER_REDIS_PORT", DEFAULT_REDIS_PORT)),
        help=f"Redis's port (PARLEY_CLUSTER_REDIS_PORT; default {DEFAULT_REDIS_PORT})",
    )
    parser.add_argument(
        "--node-ports",
        type=_ports,
        default=_ports(env("PARLEY_CLUSTER_NODE_PORTS", ",".join(map(str, DEFAULT_NODE_PORTS)))),
        help="one Daphne node per port (PARLEY_CLUSTER_NODE_PORTS; default 8001,8002)",
    )
    parser.add_argument(
        "--wipe",
        action="store_true",
        help="delete the directory (every account, message and the secret key), then exit",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    directory = args.dir.resolve()
    if args.wipe:
        if (directory / "pgdata" / "postmaster.pid").exists():
            print(f"PostgreSQL may still be running in {directory}; stop the cluster first.")
            return 1
        shutil.rmtree(directory, ignore_errors=True)
        print(f"Deleted {directory}.")
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(Settings(directory, args.postgres_port, args.redis_port, args.node_ports))
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        print(f"Starting PostgreSQL, Redis and {len(args.node_ports)} Daphne nodes…", flush=True)
        cluster.start()
        s = cluster.settings
        print(f"PostgreSQL  {s.database_url}   (data: {s.pgdata})")
        print(f"Redis       {s.redis_url}")
        for n, origin in enumerate(s.origins):
            print(f"node {n}      {origin}   (log: {directory / f'node{n}' / 'daphne.log'})")
        print(
            "Production settings: DEBUG=0, the secret key in "
            f"{directory / 'secret'}, the default rate limits."
        )
        print(
            "Each node is its own origin: an account (its passkey, a browser's keys) belongs to "
            "the node it was made on. Open a link code on the node its device shows it for."
        )
        print("Ctrl-C stops the cluster; the data stays for the next start.", flush=True)
        next_jobs = time.monotonic()
        while not stopping:
            if (gone := cluster.exited()) is not None:
                print(f"{gone} exited; stopping the cluster.", file=sys.stderr)
                return 1
            if time.monotonic() >= next_jobs:
                cluster.run_jobs()
                next_jobs = time.monotonic() + JOBS_EVERY_SECONDS
            time.sleep(0.2)
        return 0
    except ClusterError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print(
            f"Error: {' '.join(map(str, error.cmd))} failed ({error.returncode}).", file=sys.stderr
        )
        return 1
    finally:
        print("Stopping the cluster…", flush=True)
        cluster.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
