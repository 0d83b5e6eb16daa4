"""The whole app (HTTP + WebSockets) served by Daphne in a subprocess, as users meet it.

Each server has its own SQLite file and talks to the test Redis, so browser and client tests
exercise the same stack as production's scale-out setup.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        # `localhost`, not 127.0.0.1: WebAuthn refuses IP-address origins.
        return f"http://localhost:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://localhost:{self.port}"

    @property
    def db_path(self) -> Path:
        return Path(self.env["DATABASE_URL"].removeprefix("sqlite:///"))

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "web.serve",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "config.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_http(f"{self.url}/healthz")

    def stop(self, *, kill: bool = False) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                # A request still in flight when Daphne stops can leave asgiref's worker thread
                # waiting on the stopped loop, and the interpreter joins it at exit (seen after
                # the last browser test). Nothing is lost by killing it: every write committed.
                with self.log_path.open("a") as log:
                    log.write("harness: Daphne did not exit within 15 s of SIGTERM; killed\n")
                self.process.kill()
                self.process.wait(timeout=15)

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    workdir: Path,
    *,
    redis_url: str | None,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
) -> LiveServer:
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.update(
        {
            "DATABASE_URL": database_url or f"sqlite:///{workdir / 'db.sqlite3'}",
            "PARLEY_ATTACHMENT_DIR": str(workdir / "attachments"),
            "PARLEY_ORIGIN": f"http://localhost:{port}",
            # as deployed: DEBUG off (static files and scripts' hashes read once, not per request)
            "DEBUG": "0",
            "SECRET_KEY": "parley-tests",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # Many test devices share 127.0.0.1; the limits themselves are tested in-process.
            "PARLEY_RATE_SIGN_IN": "10000/60",
            "PARLEY_RATE_SIGNUP": "10000/60",
            "PARLEY_RATE_LINK": "10000/60",
            "PARLEY_RATE_BUNDLES": "10000/60",
        }
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra_env or {})
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    server = LiveServer(port=port, env=env, log_path=workdir / "daphne.log")
    server.start()
    return server
