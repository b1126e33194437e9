"""Result files: what Data Query, AQuA and export jobs write, and `GET /v1/files/{id}` serves.

Rules:
- A file is stored in PostgreSQL as numbered chunks of `CHUNK_BYTES` (the last one shorter), so
  any API process serves any file. The writer streams: it holds at most one chunk plus the piece
  being compressed, whatever the file's size; each chunk is inserted on its own (one short
  statement, committed at once), never in a transaction held for the whole file.
- A file is served only once `complete`, which the writer sets after its last chunk. A writer
  that fails deletes what it wrote; one that dies mid-file leaves an incomplete file that is
  never served and that the purge removes after `ABANDONED_AFTER`.
- Compression: NONE stores the bytes as given; GZIP one gzip member (what `gzip -d` and
  `zlib.decompress(data, 31)` read); ZIP a .zip archive holding one deflated entry
  (`inner_name`, by default the file name without its `.zip`), written streaming: sizes and CRC
  follow the entry in a data descriptor and ZIP64 records are always written, so an entry may
  pass 4 GiB uncompressed. Compression runs in a thread (zlib releases the GIL), so the
  worker's event loop (heartbeats, other jobs) keeps running meanwhile.
- A stored file may hold at most `MAX_FILE_BYTES` (2,047 MiB, the largest file Zuora serves);
  a writer going past it fails with `ResultFileTooLarge` and keeps nothing.
- Every file expires (`expires_in`, chosen by the surface); an expired file answers 404 and the
  purge deletes it.
- Pace: once a first chunk is stored, after each piece the writer rests `export_rest_ratio`
  times as long as the piece took (`PARTNERBILL_EXPORT_REST_RATIO`, default 1). The worker's
  own process is already at the idle CPU class, but the database session producing the rows
  is not: without a rest an export runs its query at full speed beside the API's writes and
  their p99 rose ~1.5x in `partnerbill bench export`; resting as long as it works halves its
  share and its speed. A result within one chunk never rests: ETL tools probe exportability
  with many tiny exports at once, and those must clear the queued-job limit as before.
- Row count: the surface passes a `RowCounter` and adds the rows it yields to it; the count is
  stored with the file when it completes.
"""

import asyncio
import io
import time
import zipfile
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

import structlog
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from partnerbill.core.db import autocommit
from partnerbill.core.ids import new_id
from partnerbill.core.tenants import Tenant
from partnerbill.settings import get_settings
from partnerbill.tables.query import result_file_chunks, result_files

log = structlog.get_logger(__name__)

CHUNK_BYTES = 1024 * 1024
MAX_FILE_BYTES = 2047 * 1024 * 1024
# An incomplete file this old belongs to a writer that died (no job runs this long).
ABANDONED_AFTER = timedelta(hours=6)
GZIP_WBITS = 31  # zlib's gzip container
# Files are made to be fetched, not archived: on CSV, deflate level 1 takes a third of level 6's
# CPU for a file about 15% larger, and that CPU is what an export takes from the API's writers.
DEFLATE_LEVEL = 1


class Compression(StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZIP = "zip"


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    size_bytes: int
    name: str
    media_type: str
    row_count: int = 0


@dataclass(slots=True)
class RowCounter:
    """Rows the surface has written into a file; it adds each batch it yields."""

    value: int = 0

    def add(self, rows: int) -> None:
        self.value += rows


class ResultFileTooLarge(Exception):
    def __init__(self) -> None:
        super().__init__(f"The result file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")


class _Encoder(Protocol):
    def feed(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _Plain:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _Gzip:
    def __init__(self) -> None:
        self._compressor = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, GZIP_WBITS)

    def feed(self, data: bytes) -> bytes:
        return self._compressor.compress(data)

    def finish(self) -> bytes:
        return self._compressor.flush()


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream collecting what zipfile writes until it is taken."""

    def __init__(self) -> None:
        self.pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        view = memoryview(data)  # type: ignore[arg-type]
        self.pending += view
        return view.nbytes

    def take(self) -> bytes:
        taken = bytes(self.pending)
        self.pending.clear()
        return taken


class _Zip:
    def __init__(self, inner_name: str) -> None:
        self._sink = _Sink()
        # Unseekable output: zipfile writes each entry's sizes in a data descriptor after it.
        self._archive = zipfile.ZipFile(
            self._sink, mode="w", compression=zipfile.ZIP_DEFLATED, compresslevel=DEFLATE_LEVEL
        )
        self._entry = self._archive.open(inner_name, mode="w", force_zip64=True)

    def feed(self, data: bytes) -> bytes:
        self._entry.write(data)
        return self._sink.take()

    def finish(self) -> bytes:
        self._entry.close()
        self._archive.close()
        return self._sink.take()


def _encoder(compression: Compression, inner_name: str) -> _Encoder:
    if compression is Compression.GZIP:
        return _Gzip()
    if compression is Compression.ZIP:
        return _Zip(inner_name)
    return _Plain()


class Pace:
    """Rests, at each call, `ratio` times the time elapsed since the previous rest ended."""

    def __init__(
        self,
        ratio: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._ratio = ratio
        self._clock = clock
        self._sleep = sleep
        self._since = clock()

    async def rest(self) -> None:
        if self._ratio > 0:
            await self._sleep((self._clock() - self._since) * self._ratio)
        self._since = self._clock()


class _ChunkWriter:
    """Cuts the encoded stream into `CHUNK_BYTES` rows, inserting each as soon as it is full."""

    def __init__(self, tenant: Tenant, file_id: str) -> None:
        self.tenant = tenant
        self.file_id = file_id
        self.size = 0
        self._sequence = 0
        self._pending = bytearray()

    async def write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= CHUNK_BYTES:
            chunk = bytes(self._pending[:CHUNK_BYTES])
            del self._pending[:CHUNK_BYTES]
            await self._insert(chunk)

    async def close(self) -> None:
        if self._pending:
            await self._insert(bytes(self._pending))
            self._pending.clear()

    async def _insert(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > MAX_FILE_BYTES:
            raise ResultFileTooLarge()
        async with autocommit() as conn:
            await conn.execute(
                insert(result_file_chunks).values(
                    tenant_id=self.tenant.id,
                    file_id=self.file_id,
                    sequence=self._sequence,
                    data=chunk,
                )
            )
        self._sequence += 1


async def write_result_file(
    tenant: Tenant,
    name: str,
    media_type: str,
    chunks: AsyncIterator[bytes],
    *,
    compression: Compression,
    inner_name: str | None = None,
    expires_in: timedelta,
    rows: RowCounter | None = None,
) -> StoredFile:
    """Store the bytes `chunks` yields, compressed as asked, as a complete file of `tenant`.
    On any error nothing is kept (the partial file is deleted) and the error propagates."""
    assert expires_in > timedelta(0), expires_in
    file_id = new_id()
    async with autocommit() as conn:
        await conn.execute(
            insert(result_files).values(
                tenant_id=tenant.id,
                id=file_id,
                name=name,
                media_type=media_type,
                expires_at=func.now() + expires_in,
            )
        )
    writer = _ChunkWriter(tenant, file_id)
    try:
        encoder = _encoder(compression, inner_name or name.removesuffix(".zip"))
        pace = Pace(get_settings().export_rest_ratio)
        async for piece in chunks:
            if compression is Compression.NONE:
                await writer.write(piece)
            else:
                await writer.write(await asyncio.to_thread(encoder.feed, piece))
            if writer.size:  # a result within one chunk never rests (submit-and-read probes)
                await pace.rest()
        await writer.write(encoder.finish())
        await writer.close()
        row_count = rows.value if rows is not None else 0
        async with autocommit() as conn:
            await conn.execute(
                update(result_files)
                .where(_file(tenant, file_id))
                .values(complete=True, size_bytes=writer.size, row_count=row_count)
            )
    except Exception:
        try:
            await delete_file(tenant, file_id)
        except Exception as error:  # the purge removes it later
            log.warning("result_file_not_deleted", file_id=file_id, error=repr(error))
        raise
    return StoredFile(file_id, writer.size, name, media_type, row_count)


def _file(tenant: Tenant, file_id: str) -> ColumnElement[bool]:
    return (result_files.c.tenant_id == tenant.id) & (result_files.c.id == file_id)


async def delete_file(tenant: Tenant, file_id: str) -> bool:
    """Delete the file and its chunks; whether there was one."""
    async with autocommit() as conn:
        result = await conn.execute(delete(result_files).where(_file(tenant, file_id)))
    return bool(result.rowcount)


async def find_file(tenant: Tenant, file_id: str) -> StoredFile | None:
    """The tenant's file `file_id` if it can be served: complete and not expired."""
    async with autocommit() as conn:
        row = (
            await conn.execute(
                select(
                    result_files.c.size_bytes,
                    result_files.c.name,
                    result_files.c.media_type,
                    result_files.c.row_count,
                ).where(
                    _file(tenant, file_id),
                    result_files.c.complete,
                    result_files.c.expires_at > func.now(),
                )
            )
        ).one_or_none()
    if row is None:
        return None
    return StoredFile(file_id, row.size_bytes, row.name, row.media_type, row.row_count)


class ResultFileVanished(Exception):
    """The file was deleted (expired and purged) while it was being read."""


async def read_file(tenant: Tenant, file: StoredFile) -> AsyncIterator[bytes]:
    """The file's bytes, one chunk per short read; raises `ResultFileVanished` when the file
    goes away before its last byte."""
    sent = 0
    sequence = 0
    while sent < file.size_bytes:
        async with autocommit() as conn:
            data = await conn.scalar(
                select(result_file_chunks.c.data).where(
                    result_file_chunks.c.tenant_id == tenant.id,
                    result_file_chunks.c.file_id == file.id,
                    result_file_chunks.c.sequence == sequence,
                )
            )
        if data is None:
            raise ResultFileVanished(file.id)
        sent += len(data)
        sequence += 1
        yield bytes(data)
