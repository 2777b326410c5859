"""POSTGRES_SSL_MODE against a real PostgreSQL that accepts TLS connections only."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.db.pool import DatabaseUnavailable, open_database
from tests.ops.pg_tls import SUPERUSER, UNLISTED_HOST, TlsCluster

SSL_OF_THIS_SESSION = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


def tls_settings(
    cluster: TlsCluster,
    mode: str,
    *,
    host: str = "localhost",
    root_cert: Path | None = None,
    login: tuple[str, str] | None = None,
    database: str = "postgres",
) -> Settings:
    user, password = login or (SUPERUSER, cluster.password)
    env = {
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(cluster.port),
        "POSTGRES_USER": user,
        "POSTGRES_PASSWORD": password,
        "POSTGRES_DB": database,
        "POSTGRES_SSL_MODE": mode,
        "POSTGRES_MIN_POOL": "1",
        "POSTGRES_MAX_POOL": "2",
    }
    if root_cert is not None:
        env["POSTGRES_SSL_ROOT_CERT"] = str(root_cert)
    return load_settings(env, dotenv_path=None)


async def session_ssl(settings: Settings) -> tuple[bool, str]:
    async with open_database(settings) as pool:
        row = await pool.fetchrow(SSL_OF_THIS_SESSION)
    return row["ssl"], row["version"]


async def refusal(settings: Settings) -> str:
    with pytest.raises(DatabaseUnavailable) as caught:
        async with open_database(settings):
            pass
    return str(caught.value)


async def test_require_connects_encrypted(tls_cluster: TlsCluster) -> None:
    ssl_on, version = await session_ssl(tls_settings(tls_cluster, "require"))
    assert ssl_on is True
    assert version.startswith("TLSv1.")


async def test_verify_full_with_the_ca_connects(tls_cluster: TlsCluster) -> None:
    settings = tls_settings(tls_cluster, "verify-full", root_cert=tls_cluster.ca_cert)
    assert (await session_ssl(settings))[0] is True
    by_ip = tls_settings(
        tls_cluster, "verify-full", host="127.0.0.1", root_cert=tls_cluster.ca_cert
    )
    assert (await session_ssl(by_ip))[0] is True


async def test_verify_ca_accepts_a_host_name_the_certificate_does_not_list(
    tls_cluster: TlsCluster,
) -> None:
    settings = tls_settings(
        tls_cluster, "verify-ca", host=UNLISTED_HOST, root_cert=tls_cluster.ca_cert
    )
    assert (await session_ssl(settings))[0] is True


async def test_verify_full_with_a_wrong_ca_is_one_clear_line(tls_cluster: TlsCluster) -> None:
    message = await refusal(
        tls_settings(tls_cluster, "verify-full", root_cert=tls_cluster.wrong_ca_cert)
    )
    assert message.startswith(f"cannot connect to PostgreSQL at postgresql://{SUPERUSER}:***@")
    assert "certificate verify failed" in message
    assert "\n" not in message and tls_cluster.password not in message


async def test_verify_full_refuses_a_host_name_not_in_the_certificate(
    tls_cluster: TlsCluster,
) -> None:
    message = await refusal(
        tls_settings(tls_cluster, "verify-full", host=UNLISTED_HOST, root_cert=tls_cluster.ca_cert)
    )
    assert "certificate verify failed" in message
    assert f"IP address mismatch, certificate is not valid for '{UNLISTED_HOST}'" in message
    assert "\n" not in message


async def test_disable_is_refused_by_a_hostssl_only_server(tls_cluster: TlsCluster) -> None:
    message = await refusal(tls_settings(tls_cluster, "disable"))
    assert "no pg_hba.conf entry" in message and "no encryption" in message
    assert "\n" not in message and tls_cluster.password not in message


async def test_sslmode_in_database_url_alone_is_honoured(tls_cluster: TlsCluster) -> None:
    # POSTGRES_SSL_MODE left at its default: the URL's sslmode must still apply.
    url = (
        f"postgresql://{SUPERUSER}:{tls_cluster.password}@localhost:{tls_cluster.port}"
        "/postgres?sslmode=require"
    )
    settings = load_settings({"DATABASE_URL": url, "POSTGRES_MAX_POOL": "2"}, dotenv_path=None)
    ssl_on, _version = await session_ssl(settings)
    assert ssl_on is True
