"""`make run` as a newcomer meets it: on another port, the origin passkeys are checked
against follows the port, and the URL to open is printed."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

from client.http import HttpTransport
from tests.support.actors import PrimaryActor, ok
from tests.support.ports import free_port
from tests.support.server import ROOT
from tests.support.softauthn import SoftAuthenticator


def test_make_run_on_another_port_signs_up_with_a_passkey_at_the_url_it_prints(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PARLEY_ORIGIN"}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"  # not the checkout's db
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    output: list[str] = []
    try:
        while not any(line.startswith("Parley is running at") for line in output):
            line = lines.get(timeout=120)
            assert line is not None, f"make run exited: {output}"
            output.append(line)
        url = f"http://localhost:{port}"
        assert f"Parley is running at {url}  (use localhost" in output[-1]
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, f"never served: {output}"
                time.sleep(0.2)
        # The passkey's client data names this origin; the server checks it against its own.
        username = f"new{secrets.token_hex(4)}"
        transport = HttpTransport(url)
        PrimaryActor(transport, SoftAuthenticator(origin=url), username=username).sign_up()
        assert ok(transport.get("/api/me"))["account"]["username"] == username
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as at the terminal
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
