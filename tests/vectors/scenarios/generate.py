"""Deterministic generator of the device engine's scenario files (docs/protocol.md section 22.5).

Run: .venv/bin/python tests/vectors/scenarios/generate.py   (rewrites tests/vectors/scenarios/*.json)

Keys come from TestRng streams over fixed seeds and lists are signed here (builders.py), so
two runs give identical files. The expected effects are written out by hand (list_rules.py,
content_rules.py, history_rules.py, sync_rules.py, sync_device_rules.py, reading_rules.py, group_rules.py,
retry_rules.py and the link URL below); nothing here imports the engine: a scenario states the
rule, the engines in both languages must meet it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from protocol.rng import TestRng  # noqa: E402
from tests.vectors.scenarios import (  # noqa: E402
    content_rules,
    group_rules,
    history_rules,
    list_rules,
    reading_rules,
    receive_rules,
    retry_rules,
    send_rules,
    sync_device_rules,
    sync_rules,
)
from tests.vectors.scenarios.builders import b64, seed  # noqa: E402

SCENARIO_DIR = Path(__file__).resolve().parent

# ---------------------------------------------------------------- the link URL


def link_url_calls() -> dict[str, Any]:
    origin = "https://parley.example:8443"
    rng = TestRng(seed("scenario link url"))
    code = {"link_id": "Lk_0-9aZ", "identity_key": b64(rng(32)), "ephemeral_key": b64(rng(32))}
    url = (
        f"{origin}/link/approve#v1.{code['link_id']}.{code['identity_key']}.{code['ephemeral_key']}"
    )
    key43 = code["identity_key"]
    refused = {
        "another origin": url.replace(origin, "https://evil.example"),
        "another path": url.replace("/link/approve#", "/link/approve/#"),
        "version 2": url.replace("#v1.", "#v2."),
        "a short key": url.replace(f".{key43}.", f".{key43[:-1]}."),
        "a fifth part": url + ".AAAA",
        "a link id over 64 characters": url.replace(code["link_id"], "a" * 65),
        "a key with trailing bits set": url.replace(
            f".{key43}.", f".{key43[:-1]}{'B' if key43[-1] != 'B' else 'C'}."
        ),
        "a padded key": url.replace(f".{key43}.", f".{key43}=."),
        "no fragment": f"{origin}/link/approve",
    }
    calls = [
        {"call": "link_url", "args": {"origin": origin, **code}, "returns": url},
        {"call": "parse_link_url", "args": {"url": url, "origin": origin}, "returns": code},
        {
            "call": "parse_link_url",
            "args": {"url": url.replace("Lk_0-9aZ", "x"), "origin": origin},
            "returns": {**code, "link_id": "x"},
        },
    ]
    calls += [
        {
            "note": f"refused: {what}",
            "call": "parse_link_url",
            "args": {"url": bad, "origin": origin},
            "error": "MalformedMessage",
        }
        for what, bad in refused.items()
    ]
    calls.append(
        {
            "note": "a key of 31 bytes cannot be put in a URL",
            "call": "link_url",
            "args": {"origin": origin, **code, "identity_key": b64(rng(31))},
            "error": "InvalidKey",
        }
    )
    return {
        "description": "The link URL a new device shows as a QR code: built and parsed by one function per language; anything but the exact form is refused.",
        "seeds": {"keys": "scenario link url"},
        "steps": calls,
    }


def build_scenarios() -> dict[str, dict[str, Any]]:
    return {
        "list_accepted.json": list_rules.list_accepted(),
        "list_rollback_refused.json": list_rules.list_rollback_refused(),
        "list_key_change_refused.json": list_rules.list_key_change_refused(),
        "list_injected_device_refused.json": list_rules.list_injected_device_refused(),
        "list_first_of_synced_contact.json": list_rules.list_first_of_synced_contact(),
        "list_withheld_flagged.json": list_rules.list_withheld_flagged(),
        "list_stale_refetched.json": content_rules.list_stale_refetched(),
        "device_list_notice_from_contact.json": content_rules.device_list_notice_from_contact(),
        "device_list_notice_from_own_device.json": content_rules.device_list_notice_from_own_device(),
        "list_fetch_triggers.json": content_rules.list_fetch_triggers(),
        "sync_key_own_devices_only.json": content_rules.sync_key_own_devices_only(),
        "send_planned.json": send_rules.send_planned(),
        "send_suspended_excluded.json": send_rules.send_suspended_excluded(),
        "send_mismatched_missing.json": send_rules.send_mismatched_missing(),
        "send_mismatched_extra_stale.json": send_rules.send_mismatched_extra_stale(),
        "send_mismatched_cap.json": send_rules.send_mismatched_cap(),
        "send_mismatched_untrusted.json": send_rules.send_mismatched_untrusted(),
        "link_url.json": link_url_calls(),
        **{name: build() for name, build in receive_rules.SCENARIOS.items()},
        **{name: build() for name, build in history_rules.SCENARIOS.items()},
        **{name: build() for name, build in sync_rules.SCENARIOS.items()},
        **{name: build() for name, build in sync_device_rules.SCENARIOS.items()},
        **{name: build() for name, build in reading_rules.SCENARIOS.items()},
        **{name: build() for name, build in retry_rules.SCENARIOS.items()},
        **{name: build() for name, build in group_rules.SCENARIOS.items()},
    }


def render(data: Any) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    for name, data in build_scenarios().items():
        (SCENARIO_DIR / name).write_text(render(data), encoding="utf-8")


if __name__ == "__main__":
    main()
