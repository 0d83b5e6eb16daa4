"""Files (docs/protocol.md 19.5 and 26): a file sealed on this computer and uploaded in
pieces, going on from the server's last stored piece when the connection drops; and a file
received, downloaded (going on from the last byte that came), checked against its pointer
and only then saved. Neither ever holds more of a file than a piece."""

from __future__ import annotations

import mimetypes
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from client import api
from client.api import ServerUnreachable
from client.http import HttpTransport
from protocol.attachments import (
    ATTACHMENT_CHUNK,
    AttachmentOpener,
    AttachmentPointer,
    AttachmentSealer,
    blob_size,
    file_name,
    media_type,
)
from protocol.exceptions import ProtocolError
from protocol.rng import Rng

Progress = Callable[[int, int], None]  # bytes done, bytes in all
ATTEMPTS = 5  # tries of one upload or download across dropped connections
RETRY_SECONDS = 1.0


class FileAltered(Exception):
    """The blob that came is not the file the sender sealed: nothing was kept."""


def _nothing(_done: int, _total: int) -> None:
    return None


def _ciphertext(sealer: AttachmentSealer, source: BinaryIO) -> Iterator[bytes]:
    yield sealer.header
    while piece := source.read(ATTACHMENT_CHUNK):
        yield sealer.push(piece)
    if sealer.size == 0:
        yield sealer.push(b"")


def _pieces(stream: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The blob cut in upload pieces of `size` bytes (the last shorter)."""
    buffer = bytearray()
    for part in stream:
        buffer += part
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def upload_file(
    transport: HttpTransport, path: Path, rng: Rng, *, progress: Progress = _nothing
) -> AttachmentPointer:
    """Seal and upload the file at `path`; its pointer, for the message that carries it. The
    server refuses a file over its limit before anything is sent (`attachment_too_large`)."""
    size = path.stat().st_size
    total = blob_size(size)
    opened = api.post(transport, "/api/attachments", {"size": total})
    blob_id, piece_bytes = opened["blob_id"], opened["piece_bytes"]
    sealer = AttachmentSealer(size, rng)
    key, header = sealer.key, sealer.header
    stored = 0
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with path.open("rb") as source:
                stored = _upload_from(
                    transport, blob_id, sealer, source, piece_bytes, stored, progress, total
                )
            break
        except ServerUnreachable:
            if attempt == ATTEMPTS:
                raise
            time.sleep(RETRY_SECONDS * attempt)
            stored = api.get(transport, f"/api/attachments/{blob_id}/upload")["stored"]
            sealer = AttachmentSealer.keyed(size, key, header)  # the same blob again
    sealed = sealer.finish()
    return AttachmentPointer(
        blob_id=blob_id,
        key=sealed.key,
        digest=sealed.digest,
        plaintext_hash=sealed.plaintext_hash,
        size=size,
        type=media_type(mimetypes.guess_type(path.name)[0] or ""),
        name=file_name(path.name),
    )


def _upload_from(
    transport: HttpTransport,
    blob_id: str,
    sealer: AttachmentSealer,
    source: BinaryIO,
    piece_bytes: int,
    stored: int,
    progress: Progress,
    total: int,
) -> int:
    """Send every piece from `stored` on (the ones before are sealed again and skipped)."""
    for index, piece in enumerate(_pieces(_ciphertext(sealer, source), piece_bytes)):
        if index < stored:
            continue
        answer = api.ok(transport.put_bytes(f"/api/attachments/{blob_id}/pieces/{index}", piece))
        stored = answer["stored"]
        progress(min(total, stored * piece_bytes), total)
    return stored


def _free_path(directory: Path, name: str) -> Path:
    """`name` in `directory`, or "name (2).ext", "name (3).ext"… when it is taken."""
    candidate = directory / name
    stem, suffix = candidate.stem, candidate.suffix
    number = 2
    while candidate.exists():
        candidate = directory / f"{stem} ({number}){suffix}"
        number += 1
    return candidate


def download_file(
    transport: HttpTransport,
    pointer: AttachmentPointer,
    directory: Path,
    *,
    progress: Progress = _nothing,
) -> Path:
    """Fetch, check and save the file `pointer` names; where it was saved. A blob that is
    not the sealed file raises FileAltered and leaves nothing in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f".{secrets.token_hex(8)}.part"
    opener = AttachmentOpener(pointer)
    received = 0
    total = pointer.blob_size
    try:
        with partial.open("wb") as sink:

            def take(data: bytes) -> None:
                nonlocal received
                sink.write(opener.pull(data))
                received += len(data)
                progress(received, total)

            for attempt in range(1, ATTEMPTS + 1):
                try:
                    status, error = transport.download(
                        f"/api/attachments/{pointer.blob_id}", take, offset=received
                    )
                except ServerUnreachable:
                    if attempt == ATTEMPTS:
                        raise
                    time.sleep(RETRY_SECONDS * attempt)
                    continue
                if status >= 400:
                    raise api.ApiError(status, error)
                break
        opener.finish()
    except ProtocolError as refused:
        partial.unlink(missing_ok=True)
        raise FileAltered(
            f"The file {pointer.name} was altered on the way ({refused}); nothing was kept."
        ) from refused
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    final = _free_path(directory, pointer.name)
    partial.rename(final)
    # kept: the server may delete its copy once every device it went to has said so (19.5)
    api.ok(transport.post(f"/api/attachments/{pointer.blob_id}/fetched", {}))
    return final
