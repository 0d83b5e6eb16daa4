"""Every state change of end-to-end-encrypted attachments (docs/protocol.md 19.5): one
ciphertext blob per file, uploaded in pieces by one device, fetched by the devices a send
granted it to, and deleted once each of them has it. The server never sees a key.

The pieces are files `<blob_id>/<index>` in the `attachments` storage (settings.STORAGES); the
rows say how many are stored, so a piece on disk that no row counts is never served. The
grants a send makes are written in the send's own commit (messaging/services.py).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import User
from devices.models import Device
from messaging.models import Attachment, AttachmentGrant
from protocol.attachments import blob_size
from web.errors import AppError, NotFound
from web.validation import InvalidInput

CHUNK_BYTES = 256 * 1024  # read from storage, or from a request, at a time
UNFINISHED_TTL = timedelta(hours=24)


class AttachmentTooLarge(AppError):
    code = "attachment_too_large"
    status = 413


class AttachmentQuota(AppError):
    code = "attachment_quota"
    status = 413


class PieceOutOfOrder(AppError):
    code = "piece_out_of_order"
    status = 409


class PieceMismatch(AppError):
    code = "piece_mismatch"
    status = 409


class AttachmentUnknown(AppError):
    code = "attachment_unknown"


class RangeNotSatisfiable(AppError):
    code = "range_not_satisfiable"
    status = 416


def attachment_not_found() -> NotFound:
    """One answer for a blob that does not exist and one this device may not touch."""
    return NotFound("No such attachment.")


def _storage() -> Storage:
    return storages["attachments"]


def _piece_name(blob_id: str, index: int) -> str:
    return f"{blob_id}/{index:06d}"


@dataclass(frozen=True)
class Upload:
    """Where an upload stands: what a resumed upload needs after a reconnect."""

    blob_id: str
    size: int
    piece_bytes: int
    stored: int

    @classmethod
    def of(cls, attachment: Attachment) -> Upload:
        return cls(
            blob_id=attachment.id,
            size=attachment.size,
            piece_bytes=settings.PARLEY_ATTACHMENT_PIECE_BYTES,
            stored=attachment.pieces_stored,
        )

    @property
    def pieces(self) -> int:
        return -(-self.size // self.piece_bytes)

    @property
    def complete(self) -> bool:
        return self.stored == self.pieces

    def piece_length(self, index: int) -> int:
        """Every piece is `piece_bytes` long but the last, which holds the rest."""
        return min(self.piece_bytes, self.size - index * self.piece_bytes)

    def to_json(self, *fields: str) -> dict[str, Any]:
        """The named fields of `blob_id, size, piece_bytes, pieces, stored, complete`."""
        return {name: getattr(self, name) for name in fields}


def attachment_open(*, device: Device, size: int, now: datetime | None = None) -> Upload:
    """Start an upload of a `size`-byte blob, refused over the largest file's blob size or
    over the account's quota (its live attachments, unfinished ones included, plus this)."""
    limit = settings.PARLEY_ATTACHMENT_MAX_BYTES
    if size > blob_size(limit):
        raise AttachmentTooLarge(
            f"Files can be at most {limit / 1_000_000:g} MB.", data={"limit": limit}
        )
    quota = settings.PARLEY_ATTACHMENT_QUOTA_BYTES
    with transaction.atomic():
        # The account's uploads queue on its row, so two at once cannot both fit the last room.
        User.objects.select_for_update().filter(pk=device.user_id).values_list("pk").get()
        used = Attachment.objects.filter(account_id=device.user_id).aggregate(s=Sum("size"))["s"]
        used = used or 0
        if used + size > quota:
            raise AttachmentQuota(
                f"Your attachments take {used} of {quota} bytes; this one does not fit. It"
                " frees up as your contacts fetch what you sent.",
                data={"quota": quota, "used": used},
            )
        attachment = Attachment.objects.create(
            id=secrets.token_urlsafe(16),
            uploader_device=device,
            account_id=device.user_id,
            size=size,
            created_at=now or timezone.now(),
        )
    return Upload.of(attachment)


def upload_get(*, device: Device, blob_id: str) -> Upload:
    """The upload of `blob_id`, for its uploader device only."""
    attachment = Attachment.objects.filter(pk=blob_id, uploader_device=device).first()
    if attachment is None:
        raise attachment_not_found()
    return Upload.of(attachment)


def piece_store(
    *,
    device: Device,
    blob_id: str,
    index: int,
    length: int,
    body: IO[bytes],
    now: datetime | None = None,
) -> Upload:
    """Store piece `index` of an upload from `body`, whose declared `length` is checked
    before anything is read. The next piece is appended; a piece stored before is a repeat
    after a lost answer, answered the same when its bytes are the same."""
    upload = upload_get(device=device, blob_id=blob_id)
    if index >= upload.pieces:
        raise InvalidInput(
            f"This blob has {upload.pieces} pieces, numbered from 0.",
            data={"field": "index", "pieces": upload.pieces},
        )
    expected = upload.piece_length(index)
    if length > expected:
        raise InvalidInput(
            f"Piece {index} is {expected} bytes; the Content-Length says {length}.",
            code="too_large",
            status=413,
            data={"expected": expected},
        )
    if length < expected:
        raise InvalidInput(
            f"Piece {index} is {expected} bytes; the Content-Length says {length}.",
            data={"field": "Content-Length", "expected": expected},
        )
    if index > upload.stored:
        raise PieceOutOfOrder(
            f"{upload.stored} pieces are stored; send piece {upload.stored} next.",
            data={"stored": upload.stored},
        )
    name = _piece_name(blob_id, index)
    if index < upload.stored:
        if not _same_bytes(name, body, expected):
            raise PieceMismatch(
                f"Piece {index} is stored with other bytes; this is not the same blob."
            )
        return upload
    _storage().save(name, File(_Exactly(body, expected)))
    with transaction.atomic():
        attachment = Attachment.objects.select_for_update().filter(pk=blob_id).first()
        if attachment is None:  # expired meanwhile
            raise attachment_not_found()
        # Two requests with the same piece at once: one counts it, both get the answer.
        if attachment.pieces_stored == index:
            attachment.pieces_stored = index + 1
            if Upload.of(attachment).complete:
                attachment.completed_at = now or timezone.now()
            attachment.save(update_fields=["pieces_stored", "completed_at"])
    return Upload.of(attachment)


class _Exactly:
    """A request body read in chunks that must hold exactly `length` bytes."""

    def __init__(self, body: IO[bytes], length: int) -> None:
        self.body = body
        self.left = length

    def read(self, size: int = -1) -> bytes:
        if self.left == 0:
            return b""
        data = self.body.read(min(size if size > 0 else CHUNK_BYTES, self.left, CHUNK_BYTES))
        if not data:
            raise InvalidInput("The body ended before its Content-Length.")
        self.left -= len(data)
        return data


def _same_bytes(name: str, body: IO[bytes], length: int) -> bool:
    incoming = _Exactly(body, length)
    with _storage().open(name, "rb") as stored:
        while chunk := incoming.read(CHUNK_BYTES):
            if stored.read(len(chunk)) != chunk:
                return False
    return True


@dataclass(frozen=True)
class Download:
    """What a device may fetch: the blob from byte `start`."""

    blob_id: str
    size: int
    start: int

    async def stream(self) -> AsyncIterator[bytes]:
        """The ciphertext from `start`, read piece by piece, one chunk in memory at a time.
        Having sent it all says nothing of what the device got: it says so itself once the
        file opened (`grant_fetched`)."""
        upload = Upload(self.blob_id, self.size, settings.PARLEY_ATTACHMENT_PIECE_BYTES, 0)
        read = sync_to_async(_read_chunk, thread_sensitive=False)
        first, offset = divmod(self.start, upload.piece_bytes)
        for index in range(first, upload.pieces):
            length = upload.piece_length(index)
            while offset < length:
                chunk = await read(_piece_name(self.blob_id, index), offset, length - offset)
                offset += len(chunk)
                yield chunk
            offset = 0


def _read_chunk(name: str, offset: int, most: int) -> bytes:
    with _storage().open(name, "rb") as piece:
        piece.seek(offset)
        chunk = piece.read(min(most, CHUNK_BYTES))
    if not chunk:  # shorter than its row says: end the answer short rather than loop
        raise OSError(f"Attachment piece {name} is shorter than stored.")
    return chunk


def download_get(*, device: Device, blob_id: str, start: int = 0) -> Download:
    """A complete attachment for its uploader device or a device holding a grant; any other
    device gets the answer of a blob that does not exist."""
    attachment = (
        Attachment.objects.filter(pk=blob_id, completed_at__isnull=False)
        .filter(Q(uploader_device=device) | Q(grants__device=device))
        .distinct()
        .first()
    )
    if attachment is None:
        raise attachment_not_found()
    if start >= attachment.size:
        raise RangeNotSatisfiable(
            f"The blob is {attachment.size} bytes; a range must start before its end.",
            data={"size": attachment.size},
        )
    return Download(blob_id=blob_id, size=attachment.size, start=start)


def grants_share(*, device: Device, to_device_id: str, blob_ids: list[str]) -> list[str]:
    """Grant another active device of the own account the blobs this device may fetch (a
    history's files for a newly linked device, docs/protocol.md 19.5); the ids granted. A
    blob this device may not fetch, or no longer on the server, is left out."""
    target = Device.objects.filter(
        pk=to_device_id, user_id=device.user_id, revoked_at__isnull=True
    ).first()
    if target is None or target.pk == device.pk:
        raise NotFound("No such device of your account.", code="device_not_found")
    shared = list(
        Attachment.objects.filter(pk__in=blob_ids, completed_at__isnull=False)
        .filter(Q(uploader_device=device) | Q(grants__device=device))
        .values_list("pk", flat=True)
        .distinct()
    )
    AttachmentGrant.objects.bulk_create(
        [AttachmentGrant(attachment_id=pk, device=target) for pk in shared], ignore_conflicts=True
    )
    return sorted(shared)


def grant_fetched(*, device: Device, blob_id: str, now: datetime | None = None) -> None:
    """The device says it has the file, opened and checked (`POST .../fetched`); once every
    granted device has said so, the blob is deleted. The uploader's word changes nothing; any
    other device without a grant gets the answer of a blob that does not exist."""
    with transaction.atomic():
        attachment = Attachment.objects.select_for_update().filter(pk=blob_id).first()
        if attachment is None:
            raise attachment_not_found()
        grant = AttachmentGrant.objects.filter(attachment=attachment, device=device)
        if not grant.exists():
            if attachment.uploader_device_id == device.pk:
                return
            raise attachment_not_found()
        grant.filter(fetched_at__isnull=True).update(fetched_at=now or timezone.now())
        if not attachment.grants.filter(fetched_at__isnull=True).exists():
            _delete(Attachment.objects.filter(pk=blob_id))


def _delete(attachments: QuerySet[Attachment]) -> int:
    """Delete the rows, and their pieces once that has committed."""
    ids = list(attachments.values_list("pk", flat=True))
    attachments.delete()
    transaction.on_commit(lambda: [_pieces_delete(blob_id) for blob_id in ids])
    return len(ids)


def _pieces_delete(blob_id: str) -> None:
    store = _storage()
    try:
        _, files = store.listdir(blob_id)
    except FileNotFoundError:
        return
    for name in files:
        store.delete(f"{blob_id}/{name}")
    store.delete(blob_id)


def attachments_expire(*, now: datetime | None = None) -> int:
    """The expiry job's part: attachments older than PARLEY_ATTACHMENT_RETENTION_DAYS, and
    uploads unfinished after UNFINISHED_TTL, with their pieces."""
    moment = now or timezone.now()
    retention = timedelta(days=settings.PARLEY_ATTACHMENT_RETENTION_DAYS)
    with transaction.atomic():
        return _delete(
            Attachment.objects.filter(
                Q(created_at__lt=moment - retention)
                | Q(completed_at__isnull=True, created_at__lt=moment - UNFINISHED_TTL)
            )
        )
