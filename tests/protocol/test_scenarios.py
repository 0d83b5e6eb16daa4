"""Every scenario file of the device engine (tests/vectors/scenarios/, docs/protocol.md
section 22.5), run against protocol.engine; tests/js/scenarios.test.js runs the same files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from protocol import exceptions
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import (
    DeviceState,
    GroupRecord,
    SyncState,
    event_from_dict,
    group_event_from_dict,
    handle,
    handle_group,
    handle_sync,
    history_bundle,
    history_records,
    read_position,
    read_state,
    read_up_to,
    sync_event_from_dict,
)
from protocol.linking import LinkCode, link_url, parse_link_url

SCENARIOS = Path(__file__).resolve().parents[1] / "vectors" / "scenarios"
FILES = sorted(p.name for p in SCENARIOS.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((SCENARIOS / name).read_text(encoding="utf-8"))


def test_the_scenario_files_are_what_the_generator_writes():
    spec = importlib.util.spec_from_file_location("scenario_generator", SCENARIOS / "generate.py")
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    built = generator.build_scenarios()
    assert sorted(built) == FILES
    for name, data in built.items():
        assert generator.render(data) == (SCENARIOS / name).read_text(encoding="utf-8"), name


def call(step: dict[str, Any]) -> Any:
    args = step["args"]
    if step["call"] == "link_url":
        code = LinkCode(
            args["link_id"], b64u_decode(args["identity_key"]), b64u_decode(args["ephemeral_key"])
        )
        return link_url(args["origin"], code)
    if step["call"] == "parse_link_url":
        parsed = parse_link_url(args["url"], origin=args["origin"])
        return {
            "link_id": parsed.link_id,
            "identity_key": b64u_encode(parsed.identity_key),
            "ephemeral_key": b64u_encode(parsed.ephemeral_key),
        }
    if step["call"] == "history_bundle":
        groups = args.get("group_messages", [])
        return history_bundle(args["messages"], args["contacts"], args["now"], groups)
    if step["call"] == "history_records":
        return history_records(
            args["bundle"], account_id=args["account_id"], contacts=args["contacts"]
        )
    if step["call"] == "read_state":
        return read_state(args["messages"], args["value"])
    if step["call"] == "read_position":
        return read_position(args["messages"], args["value"])
    if step["call"] == "read_up_to":
        return read_up_to(args["value"])
    raise AssertionError(f"unknown call {step['call']!r}")


MACHINES: dict[str, tuple[Any, Any, Any]] = {
    "device": (DeviceState, handle, event_from_dict),
    "sync": (SyncState, handle_sync, sync_event_from_dict),
    "group": (GroupRecord, handle_group, group_event_from_dict),
}


def run(name: str) -> int:
    """Replay one file; returns how many steps it checked."""
    scenario = load(name)
    # "machine": "sync" files run the sync machine (section 22.8), "group" the group machine
    # (25.8), instead of the device engine
    kind, step_of, parse = MACHINES[scenario.get("machine", "device")]
    state = kind.from_dict(scenario["state"]) if "state" in scenario else None
    for number, step in enumerate(scenario["steps"], 1):
        where = f"{name} step {number} ({step.get('note', '')})"
        if "call" in step:
            if "error" in step:
                with pytest.raises(getattr(exceptions, step["error"])) as caught:
                    call(step)
                assert type(caught.value).__name__ == step["error"], where
            else:
                assert call(step) == step["returns"], where
            continue
        assert state is not None, where
        state, effects = step_of(state, parse(step["event"]))
        assert [e.to_dict() for e in effects] == step["effects"], where
        # the state survives its JSON form: an adapter may store it between events
        assert kind.from_dict(json.loads(json.dumps(state.to_dict()))) == state, where
    return len(scenario["steps"])


@pytest.mark.parametrize("name", FILES)
def test_scenario(name: str):
    assert run(name) > 0


def test_every_scenario_runs(capsys: pytest.CaptureFixture[str]):
    steps = sum(run(name) for name in FILES)
    with capsys.disabled():
        print(f"\nengine scenarios (Python): {len(FILES)} files, {steps} steps")
    assert len(FILES) >= 10
