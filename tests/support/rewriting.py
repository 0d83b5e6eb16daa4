"""The misbehaving server (DESIGN §7): answers rewritten before the client sees them, while the
real server keeps its honest state. One place for both clients:

- the Python client: a transport wrapper,

    server = RewritingTransport(HttpTransport(url))
    server.rewrite("GET", r"/api/accounts/[^/]+/device-list", lambda body: {...})

  A rule is (method, full-match path pattern, function of the parsed JSON body -> new body).
  Rules apply to 200 answers only, in the order added; `log` records every exchange.

- the browser: Playwright's `page.route` on one page,

    hits = rewrite_json(page, "**/api/devices", "GET", lambda body: {...})   # parsed JSON
    hostile_answer(page, "/api/devices", lambda text: "[" * 100_000)          # raw text

- the Python client's device socket: a connection whose frames from the server go through a
  function first, and which can be handed a frame the server never sent,

    device = await Device(messenger).connect(rewrite=corrupt_deliveries(0.05, random.Random(1)))
    await device.connection.inject({"type": "deliver", "envelopes": [old_entry]})

  (`RewritingConnection`; `delivered` logs every envelope the server delivered, `sent`
  every frame the client sent),

and forgeries of a signed device list that keep the account's old signature
(`inject_device`, `swap_key`), for either; and for the account's state log, the next entry
of another branch (`other_branch`: what an own device wrote and the server kept from the
others, built with the account's sync key as that device would) and a rule serving it in
place of the real entry (`substitute_entry`).
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from client.api import Transport
from client.connection import DeviceConnection
from protocol.accountstate import build_patch
from protocol.encoding import b64u_decode, b64u_encode
from protocol.engine import SyncState
from protocol.groups import EntryKind, GroupState, sign_entry
from protocol.keys import IdentityKeyPair, generate_identity
from protocol.rng import system_rng
from protocol.syncentry import Mutation

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route, WebSocketRoute

Rewrite = Callable[[Any], Any]


@dataclass
class Rule:
    method: str
    pattern: re.Pattern[str]
    rewrite: Rewrite
    hits: int = 0


@dataclass
class RewritingTransport:
    inner: Transport
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)

    def rewrite(self, method: str, path_pattern: str, rewrite: Rewrite) -> Rule:
        rule = Rule(method.upper(), re.compile(path_pattern), rewrite)
        self.rules.append(rule)
        return rule

    def get(self, path: str) -> tuple[int, Any]:
        return self._answer("GET", path, self.inner.get(path))

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return self._answer("POST", path, self.inner.post(path, body))

    def _answer(self, method: str, path: str, result: tuple[int, Any]) -> tuple[int, Any]:
        status, body = result
        self.log.append((method, path, status))
        if status == 200:
            for rule in self.rules:
                if rule.method == method and rule.pattern.fullmatch(path):
                    rule.hits += 1
                    body = rule.rewrite(copy.deepcopy(body))
        return status, body

    def __getattr__(self, name: str) -> Any:
        # origin, cookies... of the wrapped transport
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


FrameRewrite = Callable[[dict[str, Any]], dict[str, Any] | None]


class RewritingConnection(DeviceConnection):
    """The device socket of a misbehaving server: each frame it sends passes `rewrite`
    (None drops it) before the client reads it; `inject` hands the client a frame as if the
    server had sent it (a replayed `deliver` entry)."""

    def __init__(self, *args: Any, rewrite: FrameRewrite = lambda frame: frame, **kw: Any):
        super().__init__(*args, **kw)
        self.rewrite = rewrite
        self.delivered: list[dict[str, Any]] = []  # as the server sent them
        self.sent: list[dict[str, Any]] = []

    async def _on_frame(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "deliver":
            self.delivered += copy.deepcopy(frame.get("envelopes") or [])
        rewritten = self.rewrite(frame)
        if rewritten is not None:
            await super()._on_frame(rewritten)

    async def inject(self, frame: dict[str, Any]) -> None:
        await super()._on_frame(frame)

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        self.sent.append(frame)
        await super()._send_frame(frame)


def flip_byte(ciphertext: str, rng: random.Random) -> str:
    """The ciphertext (b64u) with one byte of its last 16 flipped: the AEAD tag, so the
    envelope fails authentication (a flip in the header could read as a lower counter, which
    the ratchet takes for a replay and drops by design)."""
    data = bytearray(b64u_decode(ciphertext))
    data[len(data) - 1 - rng.randrange(16)] ^= 1 << rng.randrange(8)
    return b64u_encode(bytes(data))


def corrupt_deliveries(
    share: float, rng: random.Random, *, log: list[str] | None = None
) -> FrameRewrite:
    """A rule for `deliver` frames: each envelope's ciphertext has a byte flipped with
    probability `share` (its id appended to `log`)."""

    def rewrite(frame: dict[str, Any]) -> dict[str, Any]:
        if frame.get("type") != "deliver":
            return frame
        for envelope in frame.get("envelopes") or []:
            if rng.random() < share:
                envelope["ciphertext"] = flip_byte(envelope["ciphertext"], rng)
                if log is not None:
                    log.append(envelope["id"])
        return frame

    return rewrite


@contextmanager
def unless_closed() -> Iterator[None]:
    """A request still in flight when its test closes the page: its answer is gone, and the
    error must not surface in whatever Playwright call the next test makes (the sync API raises
    a route handler's error there). Any other failure is raised."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        yield
    except PlaywrightError as error:
        if not any(gone in str(error) for gone in ("disposed", "closed")):
            raise


def rewrite_json(page: Page, url: str | re.Pattern[str], method: str, change: Rewrite) -> list[int]:
    """Route `url` on `page`: the real answer's JSON goes through `change`. Returns a hit log."""
    hits: list[int] = []

    def handle(route: Route) -> None:
        if route.request.method != method:
            route.fallback()
            return
        with unless_closed():
            response = route.fetch()
            body = response.json()
            if response.status == 200:
                body = change(body)
                hits.append(response.status)
            route.fulfill(response=response, body=json.dumps(body))

    page.route(url, handle)
    return hits


def hostile_answer(page: Page, path: str, forge: Callable[[str], str]) -> None:
    """Route every request for `path` on `page`: the real answer's text goes through `forge`."""

    def handle(route: Route) -> None:
        with unless_closed():
            response = route.fetch()
            route.fulfill(response=response, body=forge(response.text()))

    page.route(f"**{path}", handle)


class PageSocket:
    """A page's device socket through a relay: `delivered` logs every envelope the server
    delivered, `inject(frame)` hands the page a frame the server never sent, and a subclass's
    `keep(message)` holds a server frame back instead of passing it on."""

    def __init__(self, page: Page) -> None:
        self.route: WebSocketRoute | None = None
        self.delivered: list[dict[str, Any]] = []
        page.route_web_socket(lambda url: url.endswith("/ws/device/"), self._relay)

    def _relay(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        self.route = ws

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and '"deliver"' in message:
                self.delivered += json.loads(message).get("envelopes", [])
            if not self.keep(message):
                ws.send(message)

        server.on_message(from_server)
        ws.on_message(lambda message: server.send(message))

    def keep(self, message: str | bytes) -> bool:
        return False

    def inject(self, frame: dict[str, Any]) -> None:
        assert self.route is not None, "the page has no device socket yet"
        self.route.send(json.dumps(frame))


def inject_device(listed: dict) -> dict:
    """A device list with one more device the account never signed for."""
    intruder = generate_identity(system_rng)
    listed["devices"].append(
        {
            "device_id": b64u_encode(system_rng(16)),
            "identity_key": b64u_encode(intruder.public),
            "added_at": listed["timestamp"],
            "device_signature": None,
        }
    )
    return listed  # the account's signature over the old list is kept


def swap_key(listed: dict) -> dict:
    """A device list whose first device has another identity key."""
    listed["devices"][0]["identity_key"] = b64u_encode(generate_identity(system_rng).public)
    return listed


def other_branch(state: SyncState, *, removes: tuple[str, str], now: int) -> str:
    """The entry after `state` on another branch of the log (b64u, as the server lists it):
    an own device removing `removes` = (collection, index), under the account's newest key."""
    key = state.newest_key
    assert key is not None, "the device holds no sync key"
    collection, index = removes
    removal = Mutation(collection, (index,), None, now, "another-own-device")
    version = state.account.version + 1
    written = build_patch(state.account, [removal], version=version, key=key, rng=system_rng)
    return b64u_encode(written.blob)


def substitute_entry(version: int, blob: str) -> Rewrite:
    """A rule for state log pages: the entry at `version` is served as `blob` instead."""

    def rewrite(body: Any) -> Any:
        for entry in body["entries"]:
            if entry["version"] == version:
                entry["blob"] = blob
        return body

    return rewrite


# ---------------------------------------------------------------- a group's log (25.8)

GROUP_ENTRIES = r"/api/groups/[^/]+/entries\?after=-?\d+"  # the path, for RewritingTransport


def entry_appended(wire: list[bytes]) -> Rewrite:
    """A rule that serves one more entry (the first of `wire`, once it holds one) after the
    real ones, at the next seq."""

    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        if not wire:
            return body
        seq = body["entries"][-1]["seq"] + 1 if body["entries"] else body["head"] + 1
        entry = {"seq": seq, "entry": b64u_encode(wire[0])}
        return {**body, "head": seq, "entries": [*body["entries"], entry]}

    return rewrite


def entry_replaced(seq: int, wire: bytes) -> Rewrite:
    """A rule that serves `wire` in place of the real entry at `seq`: a fork, when `wire`
    is a valid entry of another branch."""

    def rewrite(body: dict[str, Any]) -> dict[str, Any]:
        entries = [
            {"seq": seq, "entry": b64u_encode(wire)} if e["seq"] == seq else e
            for e in body["entries"]
        ]
        return {**body, "entries": entries}

    return rewrite


def other_rename(group_id: str, chain: GroupState, actor: str, identity: IdentityKeyPair) -> bytes:
    """A second entry after `chain`'s head, signed by a real admin's device: the start of a
    branch the server can show some members only."""
    return sign_entry(
        group_id=b64u_decode(group_id),
        seq=chain.seq + 1,
        previous=chain.head,
        kind=EntryKind.RENAME,
        actor=actor,
        identity=identity,
        timestamp=0,
        name="Not the trip",
    )
