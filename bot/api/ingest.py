"""POST /api/ingest/stats: authenticate, rate-limit, read the body, hand the file to the pipeline.

Order matters: credentials are checked before the body is read (a stranger cannot make us
read or inflate anything), the rate limits before the body too (a refused upload costs
nothing), and the file goes through `pipeline.process(server_id, filename, "api", data)` like
every other path. The body is either the raw file (name in X-Filename) or JSON
{"filename", "content" | "content_base64"}; `Content-Encoding: gzip` is inflated here with a
cap, so a gzip bomb stops at API_MAX_BODY_BYTES + 1 bytes of output.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from bot.api.auth import Credentials, authenticate, credentials_from
from bot.api.metrics import Metrics
from bot.db import servers as servers_db
from bot.ingest.pipeline import Pipeline, ProcessResult
from bot.ingest.webhook_trigger import RateLimiter
from bot.registry import ServerRegistry
from bot.stats import StatsFileError, parse_filename

log = logging.getLogger(__name__)

# What "the database is down" looks like from asyncpg: server errors, a closed pool, a
# refused or dropped connection, a timeout.
DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)
DB_RETRY_AFTER_S = 5
IN_FLIGHT_WAIT_S = 10.0  # the same file from a concurrent request: wait for its verdict
_GLOBAL = object()  # the global rate-limit key; never equal to a server id
_UNAUTHORIZED = "unauthorized: unknown server, disabled server or wrong API key"


@dataclass
class ApiError(Exception):
    status: int
    outcome: str  # the metrics label
    message: str
    extra: dict[str, Any] = field(default_factory=dict)
    retry_after: float | None = None

    def response(self) -> web.Response:
        body = {"status": "rejected" if self.status == 422 else "error", "error": self.message}
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        resp = web.json_response({**body, **self.extra}, status=self.status, headers=headers)
        if self.status == 413:
            resp.force_close()  # the rest of an oversized body is not worth reading
        return resp


def _unavailable(what: str) -> ApiError:
    return ApiError(503, "unavailable", what, retry_after=DB_RETRY_AFTER_S)


# -- body --------------------------------------------------------------------------------


def inflate(data: bytes, limit: int) -> bytes:
    """gunzip at most `limit` bytes of output; more is a 413, without inflating the rest."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error:
        raise ApiError(400, "invalid", "body is not valid gzip") from None
    if len(out) > limit or d.unconsumed_tail:
        raise ApiError(413, "too_large", f"decompressed body is over {limit} bytes")
    if not d.eof or d.unused_data:
        raise ApiError(400, "invalid", "body is not one complete gzip stream")
    return out


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, decoded; 413 over `limit` bytes on the wire or once inflated."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"body is over {limit} bytes")
    try:
        raw = await request.read()  # the app's client_max_size (== limit) caps the wire size
    except web.HTTPRequestEntityTooLarge:
        raise ApiError(413, "too_large", f"body is over {limit} bytes") from None
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return inflate(raw, limit)
    raise ApiError(415, "invalid", f"unsupported Content-Encoding {encoding[:20]!r} (use gzip)")


def _json_upload(body: bytes, server_id: str, header_name: str | None) -> tuple[str, bytes]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid", "body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid", "JSON body must be an object")
    if doc.get("server_id", server_id) != server_id:
        raise ApiError(400, "invalid", "server_id in the body does not match X-Server-ID")
    filename = doc.get("filename", header_name)
    if not isinstance(filename, str):
        raise ApiError(400, "invalid", 'JSON body needs "filename" (a string)')
    text, b64 = doc.get("content"), doc.get("content_base64")
    if (text is None) == (b64 is None):
        raise ApiError(400, "invalid", 'give exactly one of "content" and "content_base64"')
    try:
        if text is not None:
            if not isinstance(text, str):
                raise ValueError
            return filename, text.encode("utf-8")
        if not isinstance(b64, str):
            raise ValueError
        return filename, base64.b64decode(b64, validate=True)
    except (ValueError, binascii.Error):
        raise ApiError(400, "invalid", "file content is not a string / valid base64") from None


def parse_upload(request: web.Request, body: bytes, server_id: str) -> tuple[str, bytes]:
    """(filename, file bytes) from a JSON or raw body."""
    header_name = request.headers.get("X-Filename")
    if request.content_type == "application/json":
        return _json_upload(body, server_id, header_name)
    if not header_name:
        raise ApiError(400, "invalid", "raw body needs the file name in X-Filename")
    return header_name.strip(), body


def check_filename(filename: str, server_id: str) -> None:
    try:
        name = parse_filename(filename)
    except StatsFileError as exc:
        raise ApiError(400, "invalid", f"bad file name: {exc.reason}") from None
    if name.server_id is not None and name.server_id != server_id:
        raise ApiError(
            400,
            "invalid",
            f"file name prefix '{name.server_id}' does not match X-Server-ID '{server_id}'",
        )


# -- handler -----------------------------------------------------------------------------


class IngestHandler:
    def __init__(
        self,
        pipeline: Pipeline,
        pool: asyncpg.Pool,
        *,
        max_body_bytes: int,
        per_server_per_minute: int,
        global_per_minute: int,
        metrics: Metrics,
        registry: ServerRegistry | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.pool = pool
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.registry = registry
        self.per_server = RateLimiter(per_server_per_minute, 60.0)
        self.overall = RateLimiter(global_per_minute, 60.0)

    async def handle(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        creds = credentials_from(request.headers)
        try:
            server_id = await self._authenticate(request, creds)
        except ApiError as err:
            self.metrics.note_ingest("", err.outcome, None)
            return err.response()
        try:
            self._rate_limit(server_id)
            body = await read_body(request, self.max_body_bytes)
            filename, data = parse_upload(request, body, server_id)
            check_filename(filename, server_id)
            response, outcome = await self._ingest(server_id, filename, data)
        except ApiError as err:
            await self._note_refusal(server_id, err)
            response, outcome = err.response(), err.outcome
        self.metrics.note_ingest(server_id, outcome, time.perf_counter() - t0)
        return response

    async def _authenticate(self, request: web.Request, creds: Credentials | None) -> str:
        if creds is None:
            log.warning("api: upload without credentials from %s", request.remote)
            raise ApiError(401, "unauthorized", _UNAUTHORIZED)
        try:
            ok = await authenticate(self.pool, creds, self.registry)
        except DB_ERRORS as exc:
            log.warning("[%r] api: cannot check credentials: %s", creds.server_id[:32], exc)
            raise _unavailable("database unavailable, retry later") from None
        if not ok:
            # %r: the id is the client's text until the key matched
            log.warning(
                "[%r] api: refused credentials from %s", creds.server_id[:32], request.remote
            )
            raise ApiError(401, "unauthorized", _UNAUTHORIZED)
        return creds.server_id

    def _rate_limit(self, server_id: str) -> None:
        # Both checked before either records, so a refused upload uses no slot anywhere.
        wait = max(self.per_server.retry_after(server_id), self.overall.retry_after(_GLOBAL))
        if wait > 0:
            log.info("[%s] api: rate limited, retry in %.0f s", server_id, wait)
            raise ApiError(429, "rate_limited", "rate limit exceeded", retry_after=wait)
        self.per_server.allow(server_id)
        self.overall.allow(_GLOBAL)

    async def _note_refusal(self, server_id: str, err: ApiError) -> None:
        """servers.last_error for what the operator of that game server must fix."""
        if err.status not in (400, 413, 415):
            return
        log.warning("[%s] api: upload refused (%d): %s", server_id, err.status, err.message)
        await self._note_error(server_id, f"api upload refused: {err.message}")

    async def _note_error(self, server_id: str, text: str) -> None:
        try:
            async with self.pool.acquire() as conn:
                await servers_db.note_error(conn, server_id, text)
        except DB_ERRORS as exc:  # bookkeeping only: the answer stands
            log.warning("[%s] api: cannot record last_error: %s", server_id, exc)

    async def _ingest(self, server_id: str, filename: str, data: bytes) -> tuple[web.Response, str]:
        res = await self._process(server_id, filename, data)
        if res.outcome == "imported":
            return _ok("success", res.round_id, server_id, filename), "success"
        if res.outcome == "rejected":
            await self._note_error(server_id, f"{filename}: {res.reason}")
            raise _rejected(filename, res.reason)
        if res.outcome == "failed":
            raise await self._failed(res)
        # duplicate, or skipped as already processed: the ledger row says which.
        return await self._already(server_id, filename, res)

    async def _process(self, server_id: str, filename: str, data: bytes) -> ProcessResult:
        """pipeline.process, waiting out a concurrent upload of the same file."""
        tracker = self.pipeline.tracker
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        while True:
            res = await self.pipeline.process(server_id, filename, "api", data=data)
            if res.outcome != "skipped" or not res.reason or "in flight" not in res.reason:
                return res
            while tracker.is_in_flight(server_id, filename):
                if time.monotonic() > deadline:
                    raise _unavailable("the same file is being stored right now; retry")
                await asyncio.sleep(0.02)

    async def _failed(self, res: ProcessResult) -> ApiError:
        if res.error_kind is None:  # the importer's verdict: maybe an incomplete file
            return _rejected(res.filename, res.reason, retryable=True)
        if res.error_kind == "database" or not await self._database_ok():
            return _unavailable("database unavailable, retry later")
        return ApiError(500, "error", "internal error while storing the file; retry later")

    async def _already(
        self, server_id: str, filename: str, res: ProcessResult
    ) -> tuple[web.Response, str]:
        try:
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(
                    """SELECT status, error, round_id FROM processed_files
                       WHERE server_id = $1 AND filename = $2""",
                    server_id,
                    filename,
                )
        except DB_ERRORS:
            raise _unavailable("database unavailable, retry later") from None
        if row is not None and row["status"] == "rejected":
            raise _rejected(filename, row["error"] or res.reason)
        if row is None or row["status"] != "done":  # not settled: let the uploader come back
            raise _unavailable(f"file not stored yet ({res.reason}); retry")
        log.info("[%s] api: %s already stored (%s)", server_id, filename, res.reason)
        round_id = res.round_id if res.round_id is not None else row["round_id"]
        return _ok("duplicate", round_id, server_id, filename), "duplicate"

    async def _database_ok(self) -> bool:
        try:
            async with asyncio.timeout(2.0), self.pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        except DB_ERRORS:
            return False
        return True


def _ok(status: str, round_id: int | None, server_id: str, filename: str) -> web.Response:
    return web.json_response(
        {"status": status, "server_id": server_id, "round_id": round_id, "filename": filename}
    )


def _rejected(filename: str, reason: str | None, *, retryable: bool = False) -> ApiError:
    extra: dict[str, Any] = {"filename": filename, "reason": reason or "not a stats file"}
    if retryable:
        extra["retryable"] = True
    return ApiError(422, "rejected", "not a stats file", extra)
