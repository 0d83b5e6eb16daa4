"""The new device's side of linking (DESIGN §4, docs/protocol.md section 13).

`CompanionLink` holds one device's keys and performs each step over a transport; the
steps are separate so tests can interleave them with a primary. `link_device` drives the
whole flow for the command line: it rotates the QR before it expires, waits for the
approval, checks the provisioning payload and the published device list, and saves the
device in the store only when everything verified.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from client import api
from client.api import ApiError, ServerUnreachable, Transport
from client.devicelists import accept_device_list, fetch_device_list
from client.store import OwnDevice, Store, now_ms
from protocol import devicelist as dl
from protocol import linking
from protocol.encoding import b64u_decode, b64u_encode
from protocol.exceptions import MalformedMessage, ProtocolError
from protocol.keys import (
    KEM_PREKEYS_PER_UPLOAD,
    DeviceKeys,
    X25519KeyPair,
    generate_device_keys,
    kem_prekey_json,
)
from protocol.rng import Rng, system_rng

T = TypeVar("T")

PLATFORM = "Python (command line)"
ONE_TIME_PREKEYS = 100
POLL_SECONDS = 0.5
EXPIRED_CODES = {"link_expired", "link_not_found"}


class LinkFailed(Exception):
    """Linking stopped; `message` says why in words a person can act on."""


class LinkRefused(LinkFailed):
    """This client refused what the server relayed: a provisioning payload or device list
    that does not verify. `cause` is the protocol error that decided it."""

    def __init__(self, message: str, cause: ProtocolError | None = None):
        super().__init__(message)
        self.cause = cause


class LinkExpired(LinkFailed):
    """The link request expired (or is about to); a new QR code is needed."""


@dataclass(frozen=True)
class LinkRequest:
    """One open link session: what the QR code carries, and when it stops being valid."""

    link_id: str
    identity_key: bytes
    ephemeral_key: bytes
    ttl_seconds: int
    opened_at: float  # on the caller's monotonic clock

    def url(self, origin: str) -> str:
        """The approval page; the fragment (never sent to the server) carries the keys."""
        return linking.link_url(
            origin, linking.LinkCode(self.link_id, self.identity_key, self.ephemeral_key)
        )

    @property
    def check_code(self) -> str:
        digits = linking.link_check_code(
            link_id=self.link_id,
            companion_identity_key=self.identity_key,
            ephemeral_key=self.ephemeral_key,
        )
        return f"{digits[:3]} {digits[3:]}"

    @property
    def expires_at(self) -> float:
        return self.opened_at + self.ttl_seconds


@dataclass(frozen=True)
class LinkStatus:
    """GET /api/link/<id> as the new device sees it."""

    state: str
    provisioning: bytes | None
    token_nonce: bytes | None
    account_display_name: str | None

    @classmethod
    def from_json(cls, data: Any) -> LinkStatus:
        if not isinstance(data, dict) or not isinstance(data.get("state"), str):
            raise MalformedMessage("link status: expected an object with a string 'state'")
        provisioning, nonce = data.get("provisioning"), data.get("token_nonce")
        name = data.get("account_display_name")
        return cls(
            state=data["state"],
            provisioning=None
            if provisioning is None
            else b64u_decode(provisioning, what="provisioning"),
            token_nonce=None
            if nonce is None
            else b64u_decode(nonce, length=32, what="token_nonce"),
            account_display_name=name if isinstance(name, str) else None,
        )


def new_device_id() -> str:
    return b64u_encode(secrets.token_bytes(16))


def prekey_upload(keys: DeviceKeys) -> dict[str, Any]:
    """The public halves of the signed and one-time prekeys, as the API takes them."""
    spk = keys.signed_prekey
    return {
        "signed_prekey": {
            "id": spk.id,
            "public_key": b64u_encode(spk.key.public),
            "signature": b64u_encode(spk.signature),
        },
        "one_time_prekeys": [
            {"id": k.id, "public_key": b64u_encode(k.key.public)} for k in keys.one_time_prekeys
        ],
        # version 2: its bundle has a KEM prekey from the start (docs/protocol.md 27.6)
        **(
            {}
            if keys.last_resort_kem_prekey is None
            else {
                "last_resort_kem_prekey": kem_prekey_json(keys.last_resort_kem_prekey),
                "kem_prekeys": [kem_prekey_json(k) for k in keys.kem_prekeys],
            }
        ),
    }


class CompanionLink:
    """One new device linking itself: its keys are made once, each QR gets a new ephemeral key."""

    def __init__(
        self,
        transport: Transport,
        *,
        name: str,
        platform: str = PLATFORM,
        one_time_prekeys: int = ONE_TIME_PREKEYS,
        rng: Rng = system_rng,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.name = name
        self.platform = platform
        self.rng = rng
        self.clock = clock
        self.device_id = new_device_id()
        self.keys = generate_device_keys(
            rng,
            signed_prekey_id=1,
            one_time_prekey_ids=range(1, one_time_prekeys + 1),
            last_resort_kem_prekey_id=1,
            kem_prekey_ids=range(2, 2 + KEM_PREKEYS_PER_UPLOAD),  # the rest on connect
        )
        self.ephemeral: X25519KeyPair | None = None
        self.request: LinkRequest | None = None
        self.provisioning: linking.Provisioning | None = None

    def _request(self) -> LinkRequest:
        if self.request is None:
            raise RuntimeError("open() a link request first")
        return self.request

    def open(self) -> LinkRequest:
        """POST /api/link with a fresh ephemeral key; the server sets the link cookie."""
        self.ephemeral = X25519KeyPair.generate(self.rng)
        self.provisioning = None
        opened = api.post(
            self.transport,
            "/api/link",
            {
                "device_id": self.device_id,
                "identity_key": b64u_encode(self.keys.identity.public),
                "ephemeral_key": b64u_encode(self.ephemeral.public),
                "name": self.name,
                "platform": self.platform,
            },
        )
        self.request = LinkRequest(
            link_id=opened["link_id"],
            identity_key=self.keys.identity.public,
            ephemeral_key=self.ephemeral.public,
            ttl_seconds=int(opened["ttl_seconds"]),
            opened_at=self.clock(),
        )
        return self.request

    def status(self) -> LinkStatus:
        return LinkStatus.from_json(api.get(self.transport, f"/api/link/{self._request().link_id}"))

    def cancel(self) -> None:
        api.post(self.transport, f"/api/link/{self._request().link_id}/cancel", {})

    def accept_provisioning(self, status: LinkStatus) -> linking.Provisioning:
        """Open the sealed payload; it must be the account's signature over our key and link."""
        request = self._request()
        if status.provisioning is None or self.ephemeral is None:
            raise LinkFailed("The link request has no provisioning payload yet.")
        try:
            self.provisioning = linking.open_provisioning(
                status.provisioning,
                ephemeral=self.ephemeral,
                own_identity_key=self.keys.identity.public,
                link_id=request.link_id,
            )
        except ProtocolError as error:
            raise LinkRefused(
                f"Refused the approval: the provisioning payload is not for this device ({error}).",
                error,
            ) from error
        return self.provisioning

    def sign(self) -> dict[str, Any]:
        """Answer with our device signature and our prekeys (phase two of DESIGN §7)."""
        if self.provisioning is None:
            raise RuntimeError("accept_provisioning() first")
        signature = dl.sign_device(
            self.keys.identity,
            account_id=self.provisioning.account_id,
            account_key=self.provisioning.account_key,
            protocols=dl.SPOKEN_PROTOCOLS,  # the versions this device speaks (27.5)
        )
        answer: dict[str, Any] = api.post(
            self.transport,
            f"/api/link/{self._request().link_id}/device-signature",
            {"device_signature": b64u_encode(signature), **prekey_upload(self.keys)},
        )
        return answer

    def redeem(self, status: LinkStatus | None = None) -> dict[str, Any]:
        """Trade a signature over (token nonce ‖ link id) for this device's own session."""
        request = self._request()
        status = status or self.status()
        if status.token_nonce is None:
            raise LinkFailed("The link request has no sign-in token yet.")
        signature = linking.sign_link_token(
            self.keys.identity, nonce=status.token_nonce, link_id=request.link_id
        )
        answer: dict[str, Any] = api.post(
            self.transport,
            f"/api/link/{request.link_id}/redeem",
            {"signature": b64u_encode(signature)},
        )
        return answer

    def verify_own_device_list(self) -> dl.DeviceList:
        """The account's list must verify under the provisioned account key and hold us."""
        if self.provisioning is None:
            raise RuntimeError("accept_provisioning() first")
        try:
            device_list = fetch_device_list(self.transport, self.provisioning.account_id)
            dl.verify_device_list(device_list, expected_account_key=self.provisioning.account_key)
        except ProtocolError as error:
            raise LinkRefused(
                f"Refused the account's device list: it does not verify under the account key "
                f"this device was provisioned with ({error}).",
                error,
            ) from error
        entry = device_list.entry(self.device_id)
        if entry is None or entry.identity_key != self.keys.identity.public:
            raise LinkRefused(
                "Refused the account's device list: it does not list this device with its own key."
            )
        return device_list

    def own_device(self, *, server: str) -> OwnDevice:
        if self.provisioning is None:
            raise RuntimeError("accept_provisioning() first")
        return OwnDevice(
            device_id=self.device_id,
            name=self.name,
            server=server,
            account_id=self.provisioning.account_id,
            account_key=self.provisioning.account_key,
            keys=self.keys,
            linked_at=now_ms(),
        )


# ---------------------------------------------------------------- the whole flow


@dataclass(frozen=True)
class QrShown:
    request: LinkRequest
    url: str
    replaces: str | None  # the link id of the QR this one replaces


@dataclass(frozen=True)
class Approved:
    account_id: str
    display_name: str | None


@dataclass(frozen=True)
class Linked:
    device_id: str
    account_id: str


LinkEvent = QrShown | Approved | Linked


def link_device(
    transport: Transport,
    store: Store,
    *,
    origin: str,
    name: str,
    report: Callable[[LinkEvent], None],
    one_time_prekeys: int = ONE_TIME_PREKEYS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = POLL_SECONDS,
    refresh_margin: float = 15.0,
) -> OwnDevice:
    """Link this device to an account and save it in `store`; raises LinkFailed (or ApiError)."""
    link = CompanionLink(transport, name=name, one_time_prekeys=one_time_prekeys, clock=clock)
    replaces: str | None = None
    while True:
        request = link.open()
        report(QrShown(request=request, url=request.url(origin), replaces=replaces))
        replaces = request.link_id
        try:
            status = _wait(
                link,
                {"approved"},
                clock=clock,
                sleep=sleep,
                poll=poll_seconds,
                refresh_at=request.expires_at - min(refresh_margin, request.ttl_seconds / 4),
            )
            try:
                provisioning = link.accept_provisioning(status)
            except LinkRefused:
                _quietly(link.cancel)
                raise
            # The approval gives the link one more TTL on the server; we saw it after it happened.
            approved_deadline = clock() + request.ttl_seconds + 1.0
            report(Approved(provisioning.account_id, status.account_display_name))
            _expired_as(LinkExpired, link.sign)
            status = _wait(
                link,
                {"linked"},
                clock=clock,
                sleep=sleep,
                poll=poll_seconds,
                refresh_at=approved_deadline,
            )
            break
        except LinkExpired:
            continue
    redeemed = link.redeem(status)
    if redeemed.get("device_id") != link.device_id:
        raise LinkFailed(
            f"The server signed this device in as {redeemed.get('device_id')!r}, "
            f"expected {link.device_id!r}."
        )
    try:
        device_list = link.verify_own_device_list()
        device = link.own_device(server=origin)
        with store.transaction():
            store.save_device(device)
            accept_device_list(store, device_list, expected_account_key=device.account_key)
    except LinkRefused:
        # We refuse the account the server linked us to: drop the device on the server
        # rather than leave one whose keys we are about to forget.
        _quietly(lambda: api.post(transport, f"/api/devices/{link.device_id}/revoke", {}))
        raise
    report(Linked(device_id=device.device_id, account_id=device.account_id))
    return device


def _wait(
    link: CompanionLink,
    targets: set[str],
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    poll: float,
    refresh_at: float,
) -> LinkStatus:
    """Poll the link until it reaches a target state; LinkExpired once `refresh_at` passes
    (before the approval, the stale QR is cancelled so nobody approves it later)."""
    while True:
        status = _expired_as(LinkExpired, link.status)
        if status.state in targets:
            return status
        if status.state == "cancelled":
            raise LinkFailed("The link request was cancelled.")
        if status.state == "account_full":
            raise LinkFailed(
                "The account is full: it already has the most linked devices it can have."
                " Log one out on the primary device, then link again."
            )
        if status.state == "redeemed":
            raise LinkFailed("The link request was already used to sign in.")
        if clock() >= refresh_at:
            if status.state == "waiting":
                _quietly(link.cancel)
            raise LinkExpired("The link request expired.")
        sleep(poll)


def _expired_as(error: type[LinkExpired], step: Callable[[], T]) -> T:
    try:
        return step()
    except ApiError as failure:
        if failure.code in EXPIRED_CODES:
            raise error(failure.message) from failure
        raise


def _quietly(step: Callable[[], Any]) -> None:
    """A courtesy call to the server whose failure changes nothing for us."""
    with contextlib.suppress(ApiError, ServerUnreachable):
        step()
