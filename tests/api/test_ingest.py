"""POST /api/ingest/stats over a real socket into a real PostgreSQL: every status code."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging

import aiohttp
import asyncpg
import pytest

from bench.gen_corpus import generate_corpus
from bot.ingest.webhook_trigger import RateLimiter
from tests.api.conftest import EU2_R1, INGEST, R1, R2, SERVERS, Api, StartApi

UNAUTHORIZED = {
    "status": "error",
    "error": "unauthorized: unknown server, disabled server or wrong API key",
}


async def rounds(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    rows = await pool.fetch("SELECT server_id, filename FROM rounds ORDER BY id")
    return [(r["server_id"], r["filename"]) for r in rows]


async def last_error(pool: asyncpg.Pool, server_id: str) -> str | None:
    return await pool.fetchval("SELECT last_error FROM servers WHERE id = $1", server_id)


# -- success and duplicates ------------------------------------------------------------------


async def test_raw_upload_is_stored_and_counted(api: Api) -> None:
    status, body, _ = await api.upload("eu1", R1.name, R1.read_bytes())
    assert status == 200
    assert body["status"] == "success"
    assert body["server_id"] == "eu1"
    assert body["filename"] == R1.name
    assert isinstance(body["round_id"], int)
    assert await rounds(api.pool) == [("eu1", R1.name)]
    server = await api.pool.fetchrow("SELECT files_count, last_seen FROM servers WHERE id='eu1'")
    assert server["files_count"] == 1 and server["last_seen"] is not None
    ledger = await api.pool.fetchrow("SELECT status, source FROM processed_files")
    assert (ledger["status"], ledger["source"]) == ("done", "api")


async def test_a_file_uploaded_twice_is_stored_once(api: Api) -> None:
    first = await api.upload("eu1", R1.name, R1.read_bytes())
    second = await api.upload("eu1", R1.name, R1.read_bytes())
    assert first[1]["status"] == "success"
    assert second[0] == 200
    assert second[1]["status"] == "duplicate"
    assert second[1]["round_id"] == first[1]["round_id"]
    assert len(await rounds(api.pool)) == 1


async def test_the_same_file_uploaded_concurrently_is_stored_once(api: Api) -> None:
    results = await asyncio.gather(*(api.upload("eu1", R1.name, R1.read_bytes()) for _ in range(6)))
    statuses = sorted(body["status"] for _, body, _ in results)
    assert all(code == 200 for code, _, _ in results)
    assert statuses == ["duplicate"] * 5 + ["success"]
    assert len(await rounds(api.pool)) == 1


async def test_duplicate_in_a_second_api_instance_is_harmless(
    api: Api, start_api: StartApi
) -> None:
    # Another instance (its own tracker) only learns it from the ledger / the importer.
    async with start_api() as other:
        a = await api.upload("eu1", R1.name, R1.read_bytes())
        b = await other.upload("eu1", R1.name, R1.read_bytes(), key=api.keys["eu1"])
    assert (a[1]["status"], b[1]["status"]) == ("success", "duplicate")
    assert len(await rounds(api.pool)) == 1


async def test_twenty_concurrent_uploads_from_five_servers(api: Api) -> None:
    corpus = generate_corpus(10, list(SERVERS), seed=5)
    files = [(n, d) for n, d in corpus if not n.endswith("-endstats.txt")]
    assert len(files) == 20
    results = await asyncio.gather(
        *(api.upload(name.split("-", 1)[0], name, data) for name, data in files)
    )
    assert [code for code, _, _ in results] == [200] * 20
    assert {body["status"] for _, body, _ in results} == {"success"}
    stored = await rounds(api.pool)
    assert sorted(stored) == sorted((name.split("-", 1)[0], name) for name, _ in files)
    counts = await api.pool.fetch("SELECT id, files_count FROM servers WHERE id = ANY($1)", SERVERS)
    assert {r["id"]: r["files_count"] for r in counts} == dict.fromkeys(SERVERS, 4)


async def test_endstats_file_before_its_round(api: Api) -> None:
    endstats = R1.with_name("eu1-2025-03-03-214222-etl_frostbite-round-1-endstats.txt")
    status, body, _ = await api.upload("eu1", endstats.name, endstats.read_bytes())
    assert (status, body["status"], body["round_id"]) == (200, "success", None)


# -- body shapes -------------------------------------------------------------------------------


async def test_json_body_with_text_content(api: Api) -> None:
    doc = {"filename": R1.name, "content": R1.read_bytes().decode("utf-8")}
    headers = {"X-Server-ID": "eu1", "X-API-Key": api.keys["eu1"]}
    headers["Content-Type"] = "application/json"
    status, body, _ = await api.post(json.dumps(doc).encode(), headers)
    assert (status, body["status"], body["filename"]) == (200, "success", R1.name)


async def test_json_body_with_base64_content_gzipped(api: Api) -> None:
    doc = {"filename": R2.name, "content_base64": base64.b64encode(R2.read_bytes()).decode()}
    headers = {
        "X-Server-ID": "eu1",
        "X-API-Key": api.keys["eu1"],
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    status, body, _ = await api.post(gzip.compress(json.dumps(doc).encode()), headers)
    assert (status, body["status"]) == (200, "success")
    assert await rounds(api.pool) == [("eu1", R2.name)]


async def test_gzip_raw_body(api: Api) -> None:
    status, body, _ = await api.upload(
        "eu1", R1.name, gzip.compress(R1.read_bytes()), headers={"Content-Encoding": "gzip"}
    )
    assert (status, body["status"]) == (200, "success")
    stored = await api.pool.fetchval("SELECT content FROM rounds")
    assert stored == R1.read_bytes()


async def test_bearer_authorization(api: Api) -> None:
    headers = {
        "X-Server-ID": "eu1",
        "Authorization": f"Bearer {api.keys['eu1']}",
        "X-Filename": R1.name,
    }
    status, body, _ = await api.post(R1.read_bytes(), headers)
    assert (status, body["status"]) == (200, "success")


# -- 400 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "needle"),
    [
        ("evil.txt", "bad file name"),
        ("../eu1-2025-03-03-214223-etl_frostbite-round-1.txt", "bad file name"),
        ("eu2-2025-03-03-214223-etl_frostbite-round-1.txt", "does not match X-Server-ID"),
        (None, "X-Filename"),
    ],
)
async def test_bad_file_names_are_400(api: Api, filename: str | None, needle: str) -> None:
    status, body, _ = await api.upload("eu1", filename, R1.read_bytes())
    assert status == 400
    assert body["status"] == "error" and needle in body["error"]
    assert "api upload refused" in (await last_error(api.pool, "eu1") or "")
    assert await rounds(api.pool) == []


async def test_prefix_mismatch_of_a_real_file_is_400(api: Api) -> None:
    status, body, _ = await api.upload("eu1", EU2_R1.name, EU2_R1.read_bytes())
    assert status == 400 and "'eu2' does not match X-Server-ID 'eu1'" in body["error"]


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be an object"),
        (json.dumps({"content": "x"}).encode(), '"filename"'),
        (json.dumps({"filename": R1.name}).encode(), "exactly one"),
        (
            json.dumps({"filename": R1.name, "content": "a", "content_base64": "YQ=="}).encode(),
            "exactly one",
        ),
        (json.dumps({"filename": R1.name, "content_base64": "%%%"}).encode(), "base64"),
        (json.dumps({"filename": R1.name, "content": 5}).encode(), "string"),
        (
            json.dumps({"filename": R1.name, "content": "x", "server_id": "eu2"}).encode(),
            "server_id",
        ),
    ],
)
async def test_bad_json_is_400(api: Api, payload: bytes, needle: str) -> None:
    headers = {
        "X-Server-ID": "eu1",
        "X-API-Key": api.keys["eu1"],
        "Content-Type": "application/json",
    }
    status, body, _ = await api.post(payload, headers)
    assert status == 400
    assert needle in body["error"]


async def test_broken_gzip_is_400(api: Api) -> None:
    status, body, _ = await api.upload(
        "eu1", R1.name, gzip.compress(R1.read_bytes())[:-20], headers={"Content-Encoding": "gzip"}
    )
    assert status == 400 and "gzip" in body["error"]


async def test_unknown_content_encoding_is_415(api: Api) -> None:
    status, body, _ = await api.upload("eu1", R1.name, b"xx", headers={"Content-Encoding": "br"})
    assert status == 415 and "gzip" in body["error"]


# -- 401 -------------------------------------------------------------------------------------


async def test_unknown_disabled_wrong_key_and_keyless_all_look_the_same(api: Api) -> None:
    data = R1.read_bytes()
    attempts = [
        await api.upload("nosuch", R1.name, data, key=api.keys["eu1"]),  # unknown server
        await api.upload("off1", R1.name, data),  # disabled, right key
        await api.upload("eu1", R1.name, data, key=api.keys["eu2"]),  # another server's key
        await api.upload("eu1", R1.name, data, key="x" * 43),  # wrong key
        await api.upload("nokey", R1.name, data, key="x" * 43),  # server without a key
        await api.post(data, {"X-Server-ID": "eu1", "X-Filename": R1.name}),  # no key
        await api.post(data, {"X-API-Key": api.keys["eu1"], "X-Filename": R1.name}),  # no id
        await api.post(
            data, {"X-Server-ID": "eu1", "Authorization": "Basic Zm9v", "X-Filename": R1.name}
        ),
    ]
    for status, body, _ in attempts:
        assert status == 401
        assert body == UNAUTHORIZED
    assert await rounds(api.pool) == []


async def test_unauthenticated_bodies_are_not_read(api: Api) -> None:
    # 401 comes before the size check: a stranger learns nothing and costs nothing.
    status, _, _ = await api.upload("eu1", R1.name, b"x" * 3_000_000, key="wrong")
    assert status == 401


# -- 413 -------------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413(api: Api) -> None:
    status, body, _ = await api.upload("eu1", R1.name, b"x" * (1_048_576 + 1))
    assert status == 413 and "over 1048576 bytes" in body["error"]
    # ...and the server is fine afterwards
    assert (await api.upload("eu1", R1.name, R1.read_bytes()))[0] == 200


async def test_chunked_body_over_the_limit_is_413(api: Api) -> None:
    async def chunks():
        for _ in range(40):
            yield b"y" * 65_536

    headers = {"X-Server-ID": "eu1", "X-API-Key": api.keys["eu1"], "X-Filename": R1.name}
    async with api.session.post(api.url + INGEST, data=chunks(), headers=headers) as resp:
        assert resp.status == 413


async def test_gzip_bomb_is_413_without_inflating_it(api: Api) -> None:
    bomb = gzip.compress(b"\0" * 10_000_000, compresslevel=9)
    assert len(bomb) < 20_000
    status, body, _ = await api.upload("eu1", R1.name, bomb, headers={"Content-Encoding": "gzip"})
    assert status == 413 and "decompressed body" in body["error"]


async def test_small_limit_applies_after_decompression(start_api: StartApi) -> None:
    data = R1.read_bytes()
    limit = len(data) - 1
    assert len(gzip.compress(data)) < limit  # small on the wire, too big once inflated
    async with start_api(api_max_body_bytes=limit) as api:
        status, _, _ = await api.upload(
            "eu1", R1.name, gzip.compress(data), headers={"Content-Encoding": "gzip"}
        )
    assert status == 413


# -- 422 -------------------------------------------------------------------------------------


async def test_not_a_stats_file_is_422_with_the_reason(api: Api) -> None:
    status, body, _ = await api.upload("eu1", R1.name, b"hello\nthis is not a stats file\n")
    assert status == 422
    assert body["status"] == "rejected" and body["filename"] == R1.name
    assert body["reason"]
    assert body["reason"] in (await last_error(api.pool, "eu1") or "")
    again = await api.upload("eu1", R1.name, b"hello\nthis is not a stats file\n")
    assert again[0] == 422 and again[1]["reason"] == body["reason"]
    row = await api.pool.fetchrow("SELECT status, attempts FROM processed_files")
    assert row["status"] == "rejected"


async def test_empty_file_is_422_and_can_be_sent_again(api: Api) -> None:
    status, body, _ = await api.upload("eu1", R1.name, b"")
    assert status == 422 and body.get("retryable") is True
    status, body, _ = await api.upload("eu1", R1.name, R1.read_bytes())
    assert (status, body["status"]) == (200, "success")


# -- 429 -------------------------------------------------------------------------------------


async def test_per_server_rate_limit_is_429_with_retry_after(start_api: StartApi) -> None:
    files = [n for n, _ in generate_corpus(2, ["eu1"], seed=7)]
    corpus = dict(generate_corpus(2, ["eu1"], seed=7))
    async with start_api(api_rate_limit_per_server=3) as api:
        codes = [(await api.upload("eu1", n, corpus[n]))[0] for n in files[:3]]
        status, body, headers = await api.upload("eu1", files[3], corpus[files[3]])
        other = await api.upload("eu2", EU2_R1.name, EU2_R1.read_bytes())
        assert api.metrics.ingests.value("eu1", "rate_limited") == 1
    assert codes == [200, 200, 200]
    assert status == 429 and body["error"] == "rate limit exceeded"
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert other[0] == 200  # another server has its own budget


async def test_global_rate_limit_is_429_with_retry_after(start_api: StartApi) -> None:
    async with start_api(api_rate_limit_global=2) as api:
        a = await api.upload("eu1", R1.name, R1.read_bytes())
        b = await api.upload("eu2", EU2_R1.name, EU2_R1.read_bytes())
        c = await api.upload("eu1", R2.name, R2.read_bytes())
    assert (a[0], b[0], c[0]) == (200, 200, 429)
    assert 1 <= int(c[2]["Retry-After"]) <= 60


def test_rate_limiter_retry_after_counts_down_the_window() -> None:
    now = [100.0]
    limiter = RateLimiter(2, 60.0, clock=lambda: now[0])
    assert limiter.retry_after("a") == 0.0
    assert limiter.allow("a")
    now[0] = 110.0
    assert limiter.allow("a")
    assert limiter.retry_after("a") == pytest.approx(50.0)  # the first event expires at 160
    assert not limiter.allow("a")
    now[0] = 160.0
    assert limiter.retry_after("a") == 0.0
    assert limiter.allow("a")
    assert limiter.retry_after("b") == 0.0


# -- 503 -------------------------------------------------------------------------------------


async def test_database_down_is_503_with_retry_after(start_api: StartApi, db_dsn: str) -> None:
    own = await asyncpg.create_pool(db_dsn, min_size=1, max_size=4)
    async with start_api(api_pool=own) as api:
        assert (await api.upload("eu1", R1.name, R1.read_bytes()))[0] == 200
        await own.close()
        status, body, headers = await api.upload("eu1", R2.name, R2.read_bytes())
        async with api.session.get(api.url + "/health") as resp:
            health = (resp.status, await resp.json())
    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert "database" in body["error"]
    assert health[0] == 503 and health[1]["database"] == "unreachable"


async def test_unreachable_database_server_is_503(
    start_api: StartApi, unused_tcp_port: int
) -> None:
    dead = await asyncpg.create_pool(
        f"postgresql://nobody@127.0.0.1:{unused_tcp_port}/none", min_size=0, max_size=2
    )
    try:
        async with start_api(api_pool=dead) as api:
            status, _, headers = await api.upload("eu1", R1.name, R1.read_bytes())
            async with api.session.get(api.url + "/health") as resp:
                health = resp.status
    finally:
        await dead.close()
    assert status == 503 and "Retry-After" in headers
    assert health == 503


async def test_database_error_while_storing_is_503_then_retry_works(api: Api) -> None:
    # Credentials check fine, then the import transaction fails inside PostgreSQL.
    await api.pool.execute(
        """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$;
           CREATE TRIGGER refuse BEFORE INSERT ON rounds FOR EACH ROW EXECUTE FUNCTION refuse()"""
    )
    status, body, headers = await api.upload("eu1", R1.name, R1.read_bytes())
    assert status == 503 and int(headers["Retry-After"]) >= 1
    await api.pool.execute("DROP TRIGGER refuse ON rounds")
    status, body, _ = await api.upload("eu1", R1.name, R1.read_bytes())  # the uploader retries
    assert (status, body["status"]) == (200, "success")


# -- /health, logs ---------------------------------------------------------------------------


async def test_health_ok(api: Api) -> None:
    async with api.session.get(api.url + "/health") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["version"] and body["uptime_s"] >= 0


async def test_keys_never_reach_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "W" * 43
    await api.upload("eu1", R1.name, R1.read_bytes())
    await api.upload("eu1", R1.name, R1.read_bytes())  # duplicate
    await api.upload("eu1", R2.name, b"garbage\n")  # 422
    await api.upload("eu1", "bad.txt", b"x")  # 400
    await api.upload("eu1", R2.name, R2.read_bytes(), key=wrong)  # 401
    await api.upload("nosuch", R2.name, R2.read_bytes(), key=api.keys["eu2"])  # 401
    await api.post(
        R2.read_bytes(),
        {"X-Server-ID": "eu2", "Authorization": f"Bearer {api.keys['eu2']}", "X-Filename": "x"},
    )
    async with aiohttp.ClientSession() as s, s.get(api.url + "/metrics") as resp:
        await resp.read()
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "refused credentials" in text and "imported" in text  # the flow did log
    for secret in [*api.keys.values(), wrong]:
        assert secret not in text


async def test_unknown_paths_and_methods(api: Api) -> None:
    async with api.session.get(api.url + INGEST) as resp:
        assert resp.status == 405
    async with api.session.post(api.url + "/api/ingest/other", data=b"") as resp:
        assert resp.status == 404
