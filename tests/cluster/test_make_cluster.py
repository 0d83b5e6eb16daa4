"""`make cluster` as an operator meets it: scripts/cluster.py with production settings on the
ports it is given, and PostgreSQL data that outlives a stop (Ctrl-C) and a second start."""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from client.http import HttpTransport
from scripts.cluster import Cluster, Settings
from tests.support.actors import PrimaryActor, ok
from tests.support.ports import free_port
from tests.support.server import ROOT
from tests.support.softauthn import SoftAuthenticator

HTTPS_ONLY_WARNINGS = {"security.W004", "security.W008", "security.W012", "security.W016"}


class RunningCluster:
    """scripts/cluster.py in a subprocess; its output read line by line."""

    def __init__(self, directory: Path, ports: list[int]) -> None:
        postgres, redis, *nodes = ports
        self.origins = [f"http://localhost:{port}" for port in nodes]
        self.process = subprocess.Popen(
            [sys.executable, "scripts/cluster.py", "--dir", str(directory)]
            + ["--postgres-port", str(postgres), "--redis-port", str(redis)]
            + ["--node-ports", ",".join(map(str, nodes))],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in self.process.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        while True:
            try:
                line = lines.get(timeout=90)
            except queue.Empty:
                raise AssertionError(f"the cluster did not start: {self.output}") from None
            if line is None:
                raise AssertionError(f"the cluster exited at start: {self.output}")
            self.output.append(line)
            if line.startswith("Ctrl-C stops the cluster"):
                break
        self._lines = lines

    def stop(self) -> None:
        """Ctrl-C, as a person at the terminal would."""
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(timeout=90) == 0, self.output


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def cluster_dir(tmp_path: Path):
    """An overridden data directory, so the test never touches a user's var/cluster. As root,
    PostgreSQL runs as `postgres`, which cannot enter pytest's private temporary tree."""
    if os.geteuid() != 0:
        yield tmp_path / "cluster"
        return
    parent = Path(tempfile.mkdtemp(prefix="parley-make-cluster-"))
    parent.chmod(0o755)
    yield parent / "cluster"
    shutil.rmtree(parent, ignore_errors=True)


def test_make_cluster_keeps_an_account_across_a_stop_and_a_second_start(cluster_dir):
    ports: list[int] = []
    while len(ports) < 4:
        if (port := free_port()) not in ports:
            ports.append(port)

    first = RunningCluster(cluster_dir, ports)
    try:
        home, other = first.origins
        assert f"node 0      {home}   (log: {cluster_dir / 'node0' / 'daphne.log'})" in first.output
        assert any("Each node is its own origin" in line for line in first.output)
        # Production settings: no debug pages, static files still served (whitenoise).
        status, page = fetch(f"{other}/no-such-page")
        assert status == 404
        assert "URLconf" not in page
        assert fetch(f"{other}/static/js/app/shell.js")[0] == 200

        username = f"op{secrets.token_hex(4)}"
        transport = HttpTransport(home)
        PrimaryActor(transport, SoftAuthenticator(origin=home), username=username).sign_up()
        assert ok(transport.get("/api/me"))["account"]["username"] == username
    finally:
        first.stop()
    assert not any(listening(port) for port in ports)
    secret = (cluster_dir / "secret").read_text()
    assert (cluster_dir / "pgdata" / "PG_VERSION").exists()

    second = RunningCluster(cluster_dir, ports)
    try:
        # The session lives in PostgreSQL and is signed with the kept secret key.
        assert ok(transport.get("/api/me"))["account"]["username"] == username
        status, body = HttpTransport(other).post(
            "/api/accounts/register/options", {"username": username, "display_name": "Again"}
        )
        assert (status, body["error"]["code"]) == (409, "username_taken")
    finally:
        second.stop()
    assert (cluster_dir / "secret").read_text() == secret
    assert not any(listening(port) for port in ports)

    wiped = subprocess.run(
        [sys.executable, "scripts/cluster.py", "--dir", str(cluster_dir), "--wipe"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert wiped.stdout == f"Deleted {cluster_dir}.\n"
    assert not cluster_dir.exists()


def test_the_nodes_settings_pass_the_deployment_checks_but_https_ones(tmp_path):
    settings = Settings(tmp_path, postgres_port=5433, redis_port=6380, node_ports=(8001, 8002))
    checked = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=Cluster(settings).node_env(8001),
        capture_output=True,
        text=True,
        check=True,
    )
    report = checked.stdout + checked.stderr
    found = {word.strip("?:()") for word in report.split() if word.startswith("(security.")}
    assert found == HTTPS_ONLY_WARNINGS, report


def test_the_cluster_script_loads_nothing_from_the_tests():
    script = "import runpy, sys; runpy.run_path('scripts/cluster.py'); print(' '.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert not {name for name in loaded.stdout.split() if name.split(".")[0] == "tests"}
