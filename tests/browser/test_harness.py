"""The real-browser harness: the app in Chromium over Redis, passkeys with a virtual
authenticator, and a fake camera that shows a QR code."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from webauthn import generate_registration_options, options_to_json, verify_registration_response
from webauthn.helpers import parse_registration_credential_json
from webauthn.helpers.structs import (
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from tests.support.browser import DESKTOP, PHONE


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390", "1440"])
def test_home_page_reaches_the_server_over_a_websocket_through_redis(
    new_device, live_app, screenshot, viewport
):
    page = new_device(viewport=viewport).new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto("/")
    expect(page.get_by_role("heading", name="Parley")).to_be_visible()
    expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=10_000)
    expect(page.locator("#status")).to_contain_text("Connected")
    screenshot(page, f"home-{viewport['width']}")
    assert errors == []  # no CSP violation, no failed module load


def _registration_options(origin_port: int) -> tuple[str, bytes]:
    options = generate_registration_options(
        rp_id="localhost",
        rp_name="Parley",
        user_name="harness",
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.PLATFORM,
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
    )
    return options_to_json(options), options.challenge


CREATE = """async (optionsJson) => {
  try {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(JSON.parse(optionsJson));
    const credential = await navigator.credentials.create({ publicKey });
    return { ok: true, credential: JSON.stringify(credential.toJSON()) };
  } catch (error) {
    return { ok: false, name: error.name };
  }
}"""


def test_virtual_authenticator_creates_a_platform_passkey_with_user_verification(
    new_device, live_app, authenticator
):
    page = new_device().new_page()
    page.goto("/")
    auth = authenticator(page)
    options_json, challenge = _registration_options(live_app.port)
    result = page.evaluate(CREATE, options_json)
    assert result["ok"], result
    verified = verify_registration_response(
        credential=parse_registration_credential_json(result["credential"]),
        expected_challenge=challenge,
        expected_rp_id="localhost",
        expected_origin=live_app.url,
        require_user_verification=True,
    )
    assert verified.user_verified
    assert len(auth.credentials()) == 1
    assert json.loads(result["credential"])["authenticatorAttachment"] == "platform"


def test_failed_user_verification_makes_the_browser_refuse(new_device, live_app, authenticator):
    page = new_device().new_page()
    page.goto("/")
    auth = authenticator(page)
    auth.set_user_verified(False)
    options_json, _ = _registration_options(live_app.port)
    result = page.evaluate(CREATE, options_json)
    assert result == {"ok": False, "name": "NotAllowedError"}
    assert auth.credentials() == []


SCAN = """async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ video: true });
  const video = document.createElement("video");
  video.muted = true;
  video.srcObject = stream;
  await video.play();
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  for (let i = 0; i < 50; i++) {
    ctx.drawImage(video, 0, 0);
    const { data, width, height } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const code = window.jsQR(data, width, height);
    if (code) { stream.getTracks().forEach((t) => t.stop()); return code.data; }
    await new Promise((r) => setTimeout(r, 50));
  }
  stream.getTracks().forEach((t) => t.stop());
  return null;
}"""


def test_fake_camera_shows_the_qr_code_the_test_renders(camera, live_app):
    context = camera.browser.new_context(base_url=live_app.url)
    try:
        page = context.new_page()
        page.goto("/")
        page.add_script_tag(url="/static/vendor/jsqr/jsQR.js")
        camera.show("https://localhost/link#first")
        assert page.evaluate(SCAN) == "https://localhost/link#first"
        camera.show("https://localhost/link#second")
        assert page.evaluate(SCAN) == "https://localhost/link#second"
    finally:
        context.close()
