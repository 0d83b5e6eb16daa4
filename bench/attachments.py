"""Sealing and uploading a file, and fetching and opening it, on loopback, with the server's
memory while it comes in (docs/protocol.md 19.5, 26).

    python bench/attachments.py [--sizes 5,25] [--runs 3] [--browser]

For each size (MB), a Python device (client/attachments.py) seals and uploads a file of
random bytes in 1 MiB pieces, then fetches and opens it again; the server is one Daphne
node on SQLite (the embedded default). The server's resident memory is sampled every 5 ms
from /proc during the upload and the fetch: its peak above what it held before shows whether
memory grows with the file (it should not: a piece at a time). With `--browser`, the same in
headless Chromium (Debian's): a file made in the page is pasted into the composer, the web
app seals it in the page and uploads it, and the clock runs until the message says "Sent". JS sealing alone is
`node bench/attachments.mjs`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from client.attachments import download_file, upload_file  # noqa: E402
from client.http import HttpTransport  # noqa: E402
from protocol.rng import system_rng  # noqa: E402
from tests.support.actors import PrimaryActor  # noqa: E402
from tests.support.server import start_server  # noqa: E402
from tests.support.softauthn import SoftAuthenticator  # noqa: E402

SETTINGS = {"DEBUG": "0", "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class PeakMemory:
    """The largest resident set of `pid` while the block runs, sampled every 5 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.running = pid, 0, False

    def __enter__(self) -> PeakMemory:
        self.before = rss_kib(self.pid)
        self.peak, self.running = self.before, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.005)

    def __exit__(self, *_exc: object) -> None:
        self.running = False
        self.thread.join()


MAKE_FILE = """([name, size]) => {
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  window.benchFile = new File([data], name, { type: "application/octet-stream" });
}"""
PASTE_FILE = """() => {
  const transfer = new DataTransfer();
  transfer.items.add(window.benchFile);
  document.getElementById("composer-text").dispatchEvent(
    new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true }));
}"""


def browser_rows(server, pid: int, work: Path, sizes: list[int], runs: int) -> None:
    """The web app's seal, upload and send of each size, in Chromium."""
    from playwright.sync_api import expect, sync_playwright

    from tests.support.actors import person
    from tests.support.browser import DESKTOP, launch_chromium, new_device_context
    from tests.support.web import add_contact, new_primary, open_chats

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = new_device_context(browser, base_url=server.url, viewport=DESKTOP)
        page, _ = new_primary(context, "benchalice")
        bob = person(server, "benchbob")
        open_chats(page)
        add_contact(page, bob.username)
        print("| file (browser) | seal, upload and send | MB/s | server peak during upload |")
        print("|---:|---:|---:|---:|")
        for mb in sizes:
            for run in range(runs):
                name = f"file-{mb}-{run}.bin"
                page.evaluate(MAKE_FILE, [name, mb * 1_000_000])  # made in the page, not sent in
                with PeakMemory(pid) as memory:
                    started = time.perf_counter()
                    page.evaluate(PASTE_FILE)
                    line = page.locator(f'#message-list .message:has([data-file="{name}"])')
                    expect(line.locator('.message-status[data-status="sent"]')).to_be_visible(
                        timeout=120_000
                    )
                    took = time.perf_counter() - started
                print(
                    f"| {mb} MB | {took * 1000:,.0f} ms | {mb / took:.1f} | "
                    f"+{(memory.peak - memory.before) / 1024:.1f} MiB |",
                    flush=True,
                )
        context.close()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5,25", help="file sizes in MB, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also the web app in Chromium")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "server").mkdir()
        server = start_server(work / "server", redis_url=None, extra_env=SETTINGS)
        try:
            assert server.process is not None
            pid = server.process.pid
            transport = HttpTransport(server.url, timeout=120)
            PrimaryActor(
                transport, SoftAuthenticator(origin=server.url), username="bench"
            ).sign_up()
            print(
                "| file | seal and upload | MB/s | server RSS before | server peak during upload"
                " | fetch and open | MB/s | server peak during fetch |"
            )
            print("|---:|---:|---:|---:|---:|---:|---:|---:|")
            for mb in sizes:
                path = work / f"file-{mb}.bin"
                path.write_bytes(os.urandom(mb * 1_000_000))
                for _ in range(args.runs):
                    with PeakMemory(pid) as memory:
                        started = time.perf_counter()
                        pointer = upload_file(transport, path, system_rng)
                        up = time.perf_counter() - started
                    with PeakMemory(pid) as serving:
                        started = time.perf_counter()
                        saved = download_file(transport, pointer, work / "saved")
                        down = time.perf_counter() - started
                    assert saved.read_bytes() == path.read_bytes()
                    saved.unlink()
                    print(
                        f"| {mb} MB | {up * 1000:,.0f} ms | {mb / up:.1f} | "
                        f"{memory.before / 1024:.1f} MiB | {memory.peak / 1024:.1f} MiB "
                        f"(+{(memory.peak - memory.before) / 1024:.1f}) | {down * 1000:,.0f} ms | "
                        f"{mb / down:.1f} | +{(serving.peak - serving.before) / 1024:.1f} MiB |",
                        flush=True,
                    )
            if args.browser:
                browser_rows(server, pid, work, sizes, args.runs)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
