"""The command-line device end to end against the live server (real HTTP, Daphne, Redis):
link by the URL it prints, approve from a Python primary, check its status, get logged out."""

from __future__ import annotations

import os
import queue
import secrets
import subprocess
import sys
import threading
from pathlib import Path

from client.http import HttpTransport
from client.store import Store
from protocol.linking import link_check_code
from tests.client.conftest import wait_until
from tests.support.actors import LinkQr, PrimaryActor, ok
from tests.support.devices import companion_messenger
from tests.support.ports import free_port
from tests.support.server import ROOT
from tests.support.softauthn import SoftAuthenticator


class Cli:
    """`python -m client ...` in a subprocess, its output read line by line."""

    def __init__(self, *args: str, home: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "client", *args],
            cwd=ROOT,
            env=_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def line_starting(self, prefix: str, *, timeout: float = 15.0) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line starting {prefix!r}; got {self.seen}") from None
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def finish(self, *, timeout: float = 15.0) -> tuple[int, str]:
        code = self.process.wait(timeout=timeout)
        return code, self.process.stderr.read()


def _env(home: Path | None) -> dict[str, str] | None:
    """With `home`, the CLI's default state files go under it, not the user's ~/.parley."""
    return None if home is None else {**os.environ, "HOME": str(home)}


def run_cli(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        cwd=ROOT,
        env=_env(home),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=30,
    )


def qr_from_url(url: str, origin: str) -> LinkQr:
    return LinkQr.from_url(url, origin)


def test_link_status_and_logout_by_the_primary(live_app, primary, tmp_path: Path):
    store = tmp_path / "cli.sqlite3"
    cli = Cli("link", "--server", live_app.url, "--store", str(store), "--name", "Build box")
    url = cli.line_starting(f"{live_app.url}/link/approve#")
    qr = qr_from_url(url, live_app.url)
    code = link_check_code(
        link_id=qr.link_id, companion_identity_key=qr.identity_key, ephemeral_key=qr.ephemeral_key
    )
    assert cli.line_starting("Check code: ") == f"Check code: {code[:3]} {code[3:]}"
    cli.line_starting("Waiting for approval")

    # the approval page shows the name the new device gave and keeps it
    detail = ok(primary.transport.get(f"/api/link/{qr.link_id}/detail"))
    primary.approve(qr, name=detail["name"])
    assert cli.line_starting("Linking to ") == f"Linking to {primary.username}…"
    wait_until(
        lambda: ok(primary.transport.get(f"/api/link/{qr.link_id}/detail"))["state"] == "signed",
        what="the CLI's device signature",
    )
    primary.complete(qr)
    linked = cli.line_starting("Linked as device ")
    assert cli.finish() == (0, "")
    device_id = linked.removeprefix("Linked as device ").removesuffix(".")

    listed = {d["device_id"]: d for d in ok(primary.transport.get("/api/devices"))["devices"]}
    assert listed[device_id]["name"] == "Build box"
    assert listed[device_id]["is_primary"] is False

    status = run_cli("status", "--store", str(store))
    assert status.returncode == 0, status.stderr
    assert f"Account: {primary.username}" in status.stdout
    assert f"Device:  {device_id} (Build box)" in status.stdout
    assert "Session: accepted by the server\n" in status.stdout
    assert "Devices: 2 in the signed list, version 2" in status.stdout

    primary.revoke(device_id)
    status = run_cli("status", "--store", str(store))
    assert status.returncode == 1
    assert "This device was logged out." in status.stdout
    assert not store.exists()


def link_with_cli(live_app, primary, store: Path | None, *, home: Path | None = None) -> str:
    where = ["--store", str(store)] if store else []
    cli = Cli("link", "--server", live_app.url, *where, "--name", "Spare", home=home)
    qr = qr_from_url(cli.line_starting(f"{live_app.url}/link/approve#"), live_app.url)
    primary.approve(qr, name="Spare")
    wait_until(
        lambda: ok(primary.transport.get(f"/api/link/{qr.link_id}/detail"))["state"] == "signed",
        what="the CLI's device signature",
    )
    primary.complete(qr)
    linked = cli.line_starting("Linked as device ")
    assert cli.finish() == (0, "")
    return linked.removeprefix("Linked as device ").removesuffix(".")


def test_logout_logs_the_device_out_on_the_server_and_deletes_its_keys(live_app, primary, tmp_path):
    store = tmp_path / "cli.sqlite3"
    device_id = link_with_cli(live_app, primary, store)
    logout = run_cli("logout", "--store", str(store))
    assert logout.returncode == 0, logout.stderr
    assert "Logged out." in logout.stdout
    assert not store.exists()
    devices = ok(primary.transport.get("/api/devices"))
    assert device_id not in {d["device_id"] for d in devices["devices"]}
    assert device_id in devices["suspended"]  # until the primary signs a list without it


def test_status_signs_back_in_with_the_device_key_when_the_session_is_gone(
    live_app, primary, tmp_path
):
    store = tmp_path / "cli.sqlite3"
    link_with_cli(live_app, primary, store)
    with Store.open(store) as state:
        state.save_server_cookies([])  # as if the Django session had expired
    status = run_cli("status", "--store", str(store))
    assert status.returncode == 0, status.stderr
    assert (
        "Session: accepted by the server (signed in again with this device's key)" in status.stdout
    )
    status = run_cli("status", "--store", str(store))
    assert "Session: accepted by the server\n" in status.stdout  # the new session was kept


def test_server_refusal_is_printed_with_the_servers_message(live_app, tmp_path):
    store = tmp_path / "cli.sqlite3"
    refused = run_cli("link", "--server", live_app.url, "--store", str(store), "--name", "x" * 65)
    assert refused.returncode == 1
    assert refused.stderr.startswith("The server refused: ")
    assert "name" in refused.stderr


def test_unreachable_server_and_missing_store_are_clear_errors(tmp_path):
    down = run_cli(
        "link", "--server", f"http://localhost:{free_port()}", "--store", str(tmp_path / "a")
    )
    assert (down.returncode, down.stderr.split(":")[0]) == (1, "Error")
    assert "Cannot reach http://localhost:" in down.stderr
    missing = run_cli("status", "--store", str(tmp_path / "none.sqlite3"))
    assert missing.returncode == 1
    assert "No device is linked in" in missing.stderr


def test_after_logout_the_errors_name_the_link_command_with_its_server(live_app, primary, tmp_path):
    link_with_cli(live_app, primary, None, home=tmp_path)
    state = tmp_path / ".parley" / f"localhost_{live_app.port}.sqlite3"
    assert state.exists()  # host and port of the server, as the help says
    logout = run_cli("logout", "--server", live_app.url, home=tmp_path)
    assert logout.returncode == 0, logout.stderr
    assert not state.exists()

    send = run_cli("send", "--server", live_app.url, "bob", "hi", home=tmp_path)
    assert send.returncode == 1
    assert send.stderr == (
        f"Error: No device is linked in {state}. "
        f"Run `python -m client link --server {live_app.url}` first.\n"
    )
    other = tmp_path / "other.sqlite3"
    status = run_cli("status", "--store", str(other), home=tmp_path)
    assert f"Run `python -m client link --server URL --store {other}` first." in status.stderr


def test_the_help_names_the_state_file_by_host_and_port():
    shown = " ".join(run_cli("link", "--help").stdout.split())
    assert "~/.parley/HOST_PORT.sqlite3" in shown
    assert "localhost_8000.sqlite3 for http://localhost:8000" in shown


def another_person(live_app) -> PrimaryActor:
    return PrimaryActor(
        HttpTransport(live_app.url),
        SoftAuthenticator(origin=live_app.url),
        username=f"bob{secrets.token_hex(3)}",
    ).sign_up()


def test_send_says_how_many_of_your_own_devices_got_a_copy(live_app, primary, tmp_path):
    bob = another_person(live_app)
    store = tmp_path / "cli.sqlite3"
    link_with_cli(live_app, primary, store)
    sent = run_cli("send", "--store", str(store), bob.username, "hello")
    assert (sent.returncode, sent.stderr) == (0, "")
    # bob's phone, and this account's phone (the primary) gets the sent transcript
    assert sent.stdout == f"Sent to {bob.username} (1 device); a copy to your other device\n"


def test_group_commands_create_list_send_rename_and_explain_their_usage(
    live_app, primary, tmp_path
):
    bob = another_person(live_app)
    store = tmp_path / "cli.sqlite3"
    link_with_cli(live_app, primary, store)
    created = run_cli("group", "--store", str(store), "create", "Climbing", bob.username)
    assert (created.returncode, created.stderr) == (0, "")
    assert "Climbing: You created the group" in created.stdout
    assert created.stdout.splitlines()[-1].startswith("Created 'Climbing' (")
    listed = run_cli("group", "--store", str(store), "list")
    assert listed.returncode == 0 and listed.stdout.startswith("Climbing (")
    assert bob.username in listed.stdout and primary.username in listed.stdout
    sent = run_cli("group", "--store", str(store), "send", "Climbing", "hello group")
    assert (sent.returncode, sent.stdout, sent.stderr) == (0, "Sent to the group 'Climbing'.\n", "")
    renamed = run_cli("group", "--store", str(store), "rename", "Climbing", "Bouldering")
    assert renamed.returncode == 0 and "You renamed the group to 'Bouldering'" in renamed.stdout
    unknown = run_cli("group", "--store", str(store), "send", "Climbing", "x")
    assert unknown.returncode == 1
    assert unknown.stderr == "Error: This device holds no group named 'Climbing'.\n"
    usage = run_cli("group", "--store", str(store), "rename", "Bouldering")
    assert (usage.returncode, usage.stderr) == (
        1,
        "Error: Usage: python -m client group rename GROUP NAME\n",
    )


def test_a_file_sent_from_the_terminal_is_saved_by_the_contacts_listening_terminal(
    live_app, primary, tmp_path
):
    """`send-file` seals and uploads in pieces with its progress shown, then sends the
    pointer; bob's `listen` fetches it, checks it and saves it under its own name."""
    bob = another_person(live_app)
    bob_laptop = companion_messenger(bob, tmp_path)
    bob_store = bob_laptop.store.path
    bob_laptop.store.close()
    store = tmp_path / "cli.sqlite3"
    link_with_cli(live_app, primary, store)
    photo = tmp_path / "out" / "beach day.jpg"
    photo.parent.mkdir()
    photo.write_bytes(os.urandom(3_000_000))
    saved = tmp_path / "in"
    listen = Cli("listen", "--store", str(bob_store), "--save-to", str(saved), "--once")
    listen.line_starting("Listening as ")

    sent = run_cli("send-file", "--store", str(store), bob.username, str(photo))
    assert (sent.returncode, sent.stderr) == (0, "")
    lines = sent.stdout.splitlines()
    assert "Uploading beach day.jpg: 100% (3.0 MB of 3.0 MB)" in lines
    assert lines[-1] == (
        f"Sent beach day.jpg (3.0 MB) to {bob.username} (2 devices); a copy to your other device"
    )
    assert listen.line_starting("[").endswith(f"{primary.username}: a file, beach day.jpg (3.0 MB)")
    assert listen.line_starting("Saved ") == f"Saved beach day.jpg to {saved / 'beach day.jpg'}"
    assert listen.finish() == (0, "")
    assert (saved / "beach day.jpg").read_bytes() == photo.read_bytes()
    assert [p.name for p in saved.iterdir()] == ["beach day.jpg"]  # no partial file left


def test_a_file_over_the_limit_is_refused_before_any_upload(live_app, primary, tmp_path):
    bob = another_person(live_app)
    store = tmp_path / "cli.sqlite3"
    link_with_cli(live_app, primary, store)
    big = tmp_path / "film.mp4"
    with big.open("wb") as sparse:
        sparse.truncate(25_000_001)
    sent = run_cli("send-file", "--store", str(store), bob.username, str(big))
    assert (sent.returncode, sent.stdout) == (1, "")  # no piece sent: no progress shown
    assert sent.stderr == "The server refused: Files can be at most 25 MB.\n"
