"""Debian's Chromium driven by Playwright, Chromium's virtual WebAuthn authenticator, and a fake camera."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import qrcode
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every test device's pages in one renderer process (each context keeps its own storage,
    # cookies and authenticator): about 12% less Chromium CPU on this 2-core machine, where
    # the suite is CPU-bound, with nothing of the app's behaviour changed.
    "--renderer-process-limit=1",
    "--disable-site-isolation-trials",
    # Headless Chromium still builds each window's omnibox popups as WebUI pages
    # (chrome://omnibox-popup.top-chrome/), one renderer each per browser context: 8 contexts
    # took 15.6-16.0 CPU-s with them, 3.6-4.1 without. Nothing of a page is changed. (One
    # --disable-features flag only: Chromium reads the last.)
    "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def launch_chromium(
    playwright: Playwright, *, extra_args: list[str] | None = None, home: Path | None = None
) -> Browser:
    """Launch Debian's Chromium (never a Playwright-downloaded build); with `home`, as a user
    whose home is there (its certificate store: `trusting_home`)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=CHROMIUM_ARGS + (extra_args or []),
        env={**os.environ, "HOME": str(home)} if home else None,
    )


def trusting_home(home: Path, root_certificate: Path) -> Path:
    """A home directory whose NSS database (Chromium's certificate store on Linux) trusts
    `root_certificate` to identify web sites, as a person's browser does once they import it."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True, exist_ok=True)
    certutil = ["certutil", "-d", f"sql:{nssdb}"]
    subprocess.run([*certutil, "-N", "--empty-password"], check=True)
    subprocess.run(
        [*certutil, "-A", "-t", "C,,", "-n", "parley-test-root", "-i", str(root_certificate)],
        check=True,
    )
    return home


def new_device_context(
    browser: Browser, *, base_url: str, viewport: dict[str, int] | None = None
) -> BrowserContext:
    """One simulated device: its own cookies, IndexedDB, storage and authenticator."""
    return browser.new_context(base_url=base_url, viewport=viewport or DESKTOP)


@dataclass
class VirtualAuthenticator:
    """A platform authenticator (fingerprint/face) emulated by Chromium over CDP."""

    cdp: CDPSession
    authenticator_id: str

    def set_user_verified(self, verified: bool) -> None:
        """False makes every user-verification attempt fail, as a wrong finger would."""
        self.cdp.send(
            "WebAuthn.setUserVerified",
            {"authenticatorId": self.authenticator_id, "isUserVerified": verified},
        )

    def credentials(self) -> list[dict]:
        result = self.cdp.send(
            "WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id}
        )
        return result["credentials"]


def add_virtual_authenticator(page: Page) -> VirtualAuthenticator:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    result = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return VirtualAuthenticator(cdp=cdp, authenticator_id=result["authenticatorId"])


# Chromium's fake camera reads a Y4M file; it re-reads it on each getUserMedia, so a test can
# rewrite the file between scans.
CAMERA_WIDTH = 640
CAMERA_HEIGHT = 480


def write_qr_y4m(path: Path, text: str, *, frames: int = 2) -> None:
    """Render `text` as a QR code (black modules on white) into a 4:2:0 Y4M video file."""
    code = qrcode.QRCode(border=4, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix)
    scale = min(CAMERA_WIDTH, CAMERA_HEIGHT) // size
    left = (CAMERA_WIDTH - size * scale) // 2
    top = (CAMERA_HEIGHT - size * scale) // 2
    luma = bytearray(b"\xff" * (CAMERA_WIDTH * CAMERA_HEIGHT))
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if not dark:
                continue
            for y in range(top + r * scale, top + (r + 1) * scale):
                start = y * CAMERA_WIDTH + left + c * scale
                luma[start : start + scale] = b"\x00" * scale
    chroma = b"\x80" * ((CAMERA_WIDTH // 2) * (CAMERA_HEIGHT // 2))
    frame = b"FRAME\n" + bytes(luma) + chroma + chroma
    header = f"YUV4MPEG2 W{CAMERA_WIDTH} H{CAMERA_HEIGHT} F30:1 Ip A1:1 C420jpeg\n".encode()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(header + frame * frames)
    tmp.replace(path)


def fake_camera_args(path: Path) -> list[str]:
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={path}",
    ]


@dataclass
class FakeCamera:
    """A browser whose camera shows whatever QR code `show()` last rendered."""

    path: Path
    browser: Browser

    def show(self, text: str) -> None:
        write_qr_y4m(self.path, text)
