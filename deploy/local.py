"""The deployment of docs/deploy.md on this machine, without systemd: what the topology test
starts (tests/deploy/), and runnable by hand (`.venv/bin/python -m deploy.local`).

The pieces are the server's own, read from the files the document installs: the settings
from deploy/parley.env with this run's values in place of its CHANGE-ME lines (and Caddy's
from deploy/caddy.env), each node started with the ExecStart line of deploy/parley@.service
(%i the node's port), the jobs and the backup with those of parley-jobs.service and
parley-backup.service, and Caddy with the ExecStart of Debian's caddy.service and the
EnvironmentFile of deploy/caddy-parley.conf, on deploy/Caddyfile. The document's own commands
that this run makes (DOC_COMMANDS) are checked to be in docs/deploy.md, in order, by
tests/deploy/test_deploy_doc.py. PostgreSQL and Redis are throwaway servers on free ports
(scripts/cluster.py starts them) instead of Debian's services; Caddy's internal CA serves
https://localhost:PORT.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts.cluster import Cluster, Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DEBIAN_CADDY_UNIT = Path("/lib/systemd/system/caddy.service")
PLACEHOLDER = "CHANGE-ME"

# docs/deploy.md's commands that this run makes too, as the document writes them; run here
# without the `sudo -u parley`, with the server's paths mapped to this run's (`local_argv`).
DOC_COMMANDS = (
    "sudo -u parley /srv/parley/deploy/parley-manage migrate --no-input",
    "sudo -u parley /srv/parley/deploy/parley-manage check --deploy --fail-level WARNING",
)


class DeploymentError(Exception):
    """A reason the deployment cannot start, printed as is."""


@dataclass
class Unit:
    """What a systemd unit runs: its ExecStart lines, working directory and environment."""

    exec_start: list[list[str]]
    working_directory: str
    environment_files: list[str]
    environment: dict[str, str]


def read_unit(*paths: Path, instance: str = "") -> Unit:
    """The [Service] settings of a unit and its drop-ins, in order (`%i` is `instance`)."""
    unit = Unit(exec_start=[], working_directory="/", environment_files=[], environment={})
    for path in paths:
        section = ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if line.startswith("["):
                section = line
            if section != "[Service]" or "=" not in line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            value = value.replace("%i", instance)
            if key == "ExecStart":
                unit.exec_start.append(shlex.split(value))
            elif key == "WorkingDirectory":
                unit.working_directory = value
            elif key == "EnvironmentFile":
                unit.environment_files.append(value)
            elif key == "Environment":
                name, _, setting = value.partition("=")
                unit.environment[name] = setting
    return unit


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (the subset the templates use:
    comments, empty lines, one pair of double quotes around a value)."""
    values = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise DeploymentError(f"{path}: not KEY=VALUE: {raw!r}")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        values[key] = value
    return values


def fill_env_file(template: Path, values: dict[str, str], target: Path) -> dict[str, str]:
    """Write `template` to `target` with `values` on their own lines, as a person edits it,
    and return what it now sets. Every name must be the template's, and no CHANGE-ME left."""
    known = read_env_file(template)
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise DeploymentError(f"{template.name} has no line for {', '.join(unknown)}")
    lines = []
    for raw in template.read_text().splitlines():
        key = raw.partition("=")[0]
        if not raw.startswith("#") and key in values:
            value = values[key]
            raw = f'{key}="{value}"' if " " in value else f"{key}={value}"
        lines.append(raw)
    target.write_text("\n".join(lines) + "\n")
    target.chmod(0o600)
    filled = read_env_file(target)
    left = sorted(k for k, v in filled.items() if PLACEHOLDER in v)
    if left:
        raise DeploymentError(f"{target.name} still has {PLACEHOLDER} in {', '.join(left)}")
    return filled


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Deployment:
    """Caddy on https://localhost:`https_port` in front of one node per port of `node_ports`,
    with PostgreSQL and Redis, everything kept in `directory`."""

    directory: Path
    https_port: int
    node_ports: tuple[int, ...]
    stores: Cluster = field(init=False)
    nodes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    caddy: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.stores = Cluster(Settings(self.directory, free_port(), free_port(), node_ports=()))

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def caddy_data(self) -> Path:
        return self.directory / "caddy"

    @property
    def root_certificate(self) -> Path:
        """The root of Caddy's internal CA, which browsers must trust (docs/deploy.md)."""
        return self.caddy_data / "pki" / "authorities" / "local" / "root.crt"

    @property
    def paths(self) -> dict[str, Path]:
        """Where docs/deploy.md puts things on the server, and where this run has them."""
        return {
            "/srv/parley": ROOT,
            "/etc/parley/parley.env": self.directory / "parley.env",
            "/etc/parley/caddy.env": self.directory / "caddy.env",
            "/etc/caddy/Caddyfile": DEPLOY / "Caddyfile",
            "/var/backups/parley": self.directory / "backups",
        }

    def local_path(self, path: str) -> str:
        for server, here in sorted(self.paths.items(), key=lambda p: -len(p[0])):
            if path == server or path.startswith(server + "/"):
                return str(here) + path[len(server) :]
        return path

    def local_argv(self, argv: list[str]) -> list[str]:
        if argv[:3] == ["sudo", "-u", "parley"]:
            argv = argv[3:]
        return [self.local_path(arg) for arg in argv]

    # ------------------------------------------------------------ start and stop

    def start(self) -> None:
        print(f"Starting PostgreSQL and Redis in {self.directory}…", flush=True)
        self.stores.start_stores()
        self._write_settings()
        for command in DOC_COMMANDS:
            self.run_command(command)
        for port in self.node_ports:
            self.start_node(port)
        self._start_caddy()
        self.run_unit("parley-jobs.service")
        (self.directory / "backups").mkdir(exist_ok=True)
        self.run_unit("parley-backup.service")

    def stop(self) -> None:
        """Caddy, then the nodes (SIGTERM, SIGKILL after the unit's stop timeout), then Redis
        and PostgreSQL."""
        if self.caddy is not None:
            _terminate(self.caddy, timeout=10)
        for port in list(self.nodes):
            self.stop_node(port)
        self.stores.stop()

    def start_node(self, port: int) -> None:
        """parley@PORT.service: its ExecStart in its working directory, with its environment."""
        unit = read_unit(DEPLOY / "parley@.service", instance=str(port))
        (command,) = unit.exec_start
        log = self.directory / f"node-{port}.log"
        self.nodes[port] = subprocess.Popen(
            self.local_argv(command),
            cwd=self.local_path(unit.working_directory),
            env=self.unit_env(unit),
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait(lambda: self._node_ready(port), self.nodes[port], f"node {port}", log)

    def kill_node(self, port: int) -> None:
        """What the out-of-memory killer or a power cut does to one node."""
        process = self.nodes.pop(port)
        process.kill()
        process.wait()

    def stop_node(self, port: int) -> None:
        process = self.nodes.pop(port)
        _terminate(process, timeout=20)  # the unit's TimeoutStopSec

    def run_command(self, command: str) -> None:
        """One of DOC_COMMANDS, with this run's settings (PARLEY_ENV_FILE, as the server's
        /etc/parley/parley.env)."""
        env = {**_base_env(), "PARLEY_ENV_FILE": str(self.directory / "parley.env")}
        print(f"$ {command}", flush=True)
        subprocess.run(self.local_argv(shlex.split(command)), cwd=ROOT, env=env, check=True)

    def run_unit(self, name: str) -> None:
        """A oneshot unit of deploy/ (the timers' services): each ExecStart in turn."""
        unit = read_unit(DEPLOY / name)
        with (self.directory / f"{name}.log").open("ab") as log:
            for command in unit.exec_start:
                subprocess.run(
                    self.local_argv(command),
                    cwd=self.local_path(unit.working_directory),
                    env=self.unit_env(unit),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    check=True,
                )

    def unit_env(self, unit: Unit) -> dict[str, str]:
        """What systemd gives the unit: a bare environment, its Environment= lines, then its
        EnvironmentFile= files."""
        env = {**_base_env(), **unit.environment}
        for path in unit.environment_files:
            env.update(read_env_file(Path(self.local_path(path))))
        return env

    # ------------------------------------------------------------ parts

    def _write_settings(self) -> None:
        fill_env_file(
            DEPLOY / "parley.env",
            {
                "SECRET_KEY": self.stores.secret_key(),
                "PARLEY_ORIGIN": self.origin,
                "ALLOWED_HOSTS": "localhost",
                "DATABASE_URL": self.stores.settings.database_url,
                "REDIS_URL": self.stores.settings.redis_url,
                # the units' StateDirectory (/var/lib/parley) on the server
                "PARLEY_ATTACHMENT_DIR": str(self.directory / "attachments"),
            },
            self.directory / "parley.env",
        )
        fill_env_file(
            DEPLOY / "caddy.env",
            {
                "PARLEY_DOMAIN": "localhost",
                "PARLEY_TLS": "internal",
                "PARLEY_UPSTREAMS": " ".join(f"127.0.0.1:{port}" for port in self.node_ports),
                "PARLEY_HTTPS_PORT": str(self.https_port),
                "PARLEY_HTTP_PORT": str(free_port()),
                "PARLEY_CADDY_ADMIN": "off",
                "PARLEY_CADDY_DATA": str(self.caddy_data),
            },
            self.directory / "caddy.env",
        )

    def _start_caddy(self) -> None:
        """Debian's caddy.service with deploy/caddy-parley.conf as its drop-in."""
        if not DEBIAN_CADDY_UNIT.exists():
            raise DeploymentError("Debian's caddy is not installed (apt-get install caddy).")
        unit = read_unit(DEBIAN_CADDY_UNIT, DEPLOY / "caddy-parley.conf")
        (command,) = unit.exec_start
        env = {**self.unit_env(unit), "HOME": str(self.caddy_data)}
        self.caddy_data.mkdir(exist_ok=True)
        log = self.directory / "caddy.log"
        self.caddy = subprocess.Popen(
            self.local_argv(command),
            cwd=self.local_path(unit.working_directory),
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait(self._proxy_ready, self.caddy, "Caddy", log)

    def _node_ready(self, port: int) -> bool:
        """The node's /readyz as Caddy's health check asks it (deploy/Caddyfile)."""
        return _ready(http.client.HTTPConnection("127.0.0.1", port, timeout=2))

    def _proxy_ready(self) -> bool:
        """/readyz through Caddy over TLS, the certificate checked against its root."""
        if not self.root_certificate.exists():
            return False
        context = ssl.create_default_context(cafile=str(self.root_certificate))
        return _ready(
            http.client.HTTPSConnection("localhost", self.https_port, timeout=2, context=context)
        )


def _ready(connection: http.client.HTTPConnection) -> bool:
    try:
        connection.request(
            "GET", "/readyz", headers={"Host": "localhost", "X-Forwarded-Proto": "https"}
        )
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _base_env() -> dict[str, str]:
    """The little a systemd service starts with."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def _wait(ready, process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DeploymentError(f"{what} exited at start; see {log}")
        if ready():
            return
        time.sleep(0.2)
    raise DeploymentError(f"{what} was not ready within 60 s; see {log}")


def _terminate(process: subprocess.Popen[bytes], *, timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.local", description=__doc__)
    parser.add_argument("--dir", type=Path, default=ROOT / "var" / "deploy")
    parser.add_argument("--https-port", type=int, default=8443)
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args(argv)
    deployment = Deployment(
        args.dir.resolve(), args.https_port, tuple(free_port() for _ in range(args.nodes))
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        deployment.start()
        print(f"Parley is running at {deployment.origin} (nodes on {deployment.node_ports}).")
        print(f"Trust Caddy's root in your browser first: {deployment.root_certificate}")
        print("Ctrl-C stops it.", flush=True)
        while not stopping:
            time.sleep(0.2)
        return 0
    except (DeploymentError, subprocess.CalledProcessError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    finally:
        deployment.stop()


if __name__ == "__main__":
    sys.exit(main())
