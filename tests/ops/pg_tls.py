"""A private PostgreSQL cluster that only accepts TLS, with its own test CA.

Used by the remote-database tests: certificates are made here (cryptography). The server
binaries are Debian's (package `postgresql`): pgserver's build has no SSL support. As root,
the server runs as the `postgres` system user (PostgreSQL refuses to run as root), or as
pgserver's `pgserver` user when there is none, created the way pgserver does it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUPERUSER = "postgres"
# The server certificate names these; 127.0.0.2 is also served (any 127/8 address is
# loopback on Linux) but is NOT in the certificate, for the hostname-mismatch case.
CERT_HOSTS = ("localhost", "127.0.0.1")
UNLISTED_HOST = "127.0.0.2"


@dataclass(frozen=True)
class TlsCluster:
    port: int
    password: str
    ca_cert: Path
    wrong_ca_cert: Path
    pgdata: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, cert


def _server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names = [x509.DNSName(CERT_HOSTS[0]), x509.IPAddress(ipaddress.ip_address(CERT_HOSTS[1]))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CERT_HOSTS[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def server_bin_dir() -> Path:
    """The newest Debian PostgreSQL server binaries (built with OpenSSL)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        raise RuntimeError(
            "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin: "
            "apt-get install postgresql (pgserver's build has no SSL)"
        )
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Runner:
    """Runs the PostgreSQL binaries as a non-root user and owns the files they need."""

    def __init__(self) -> None:
        self.bin_dir = server_bin_dir()
        self.account: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.account = pwd.getpwnam("postgres")
            except KeyError:
                from pgserver.utils import ensure_user_exists

                self.account = ensure_user_exists("pgserver")

    def own(self, path: Path, mode: int) -> None:
        path.chmod(mode)
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def run(self, exe: str, *args: str) -> None:
        account = self.account
        result = subprocess.run(
            [str(self.bin_dir / exe), *args],
            capture_output=True,
            text=True,
            timeout=60,
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{exe} failed ({result.returncode}): {result.stderr.strip()}")


def _write_certs(root: Path, runner: _Runner, pgdata: Path) -> tuple[Path, Path]:
    ca_key, ca = _new_ca("etl-stats test CA")
    _, wrong_ca = _new_ca("etl-stats test CA")  # same name, other key: must still fail
    key, cert = _server_cert(ca_key, ca)
    (root / "ca.crt").write_bytes(_pem(ca))
    (root / "wrong-ca.crt").write_bytes(_pem(wrong_ca))
    (pgdata / "server.crt").write_bytes(_pem(cert))
    (pgdata / "server.key").write_bytes(_key_pem(key))
    runner.own(pgdata / "server.crt", 0o644)
    runner.own(pgdata / "server.key", 0o600)  # PostgreSQL refuses a group/world-readable key
    return root / "ca.crt", root / "wrong-ca.crt"


def _configure(pgdata: Path, port: int) -> None:
    with (pgdata / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(
            f"\nlisten_addresses = '{CERT_HOSTS[1]},{UNLISTED_HOST}'\nport = {port}\n"
            f"unix_socket_directories = '{pgdata}'\nssl = on\n"
            "ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
            "password_encryption = 'scram-sha-256'\nfsync = off\n"
        )
    # hostssl only: a connection without TLS finds no matching line and is refused.
    (pgdata / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.0/8 scram-sha-256\n", encoding="utf-8"
    )


def start_tls_cluster() -> TlsCluster:
    root = Path(tempfile.mkdtemp(prefix="etl-tls-pg-"))
    runner = _Runner()
    runner.own(root, 0o755)
    pgdata = root / "pgdata"
    password = "tls-test-" + os.urandom(8).hex()
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n", encoding="utf-8")
    runner.own(pwfile, 0o600)
    runner.run(
        "initdb", "-D", str(pgdata), "-U", SUPERUSER, f"--pwfile={pwfile}",
        "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-sync",
    )  # fmt: skip
    pwfile.unlink()
    ca, wrong_ca = _write_certs(root, runner, pgdata)
    port = free_port()
    _configure(pgdata, port)
    runner.run("pg_ctl", "-D", str(pgdata), "-l", str(root / "server.log"), "-w", "start")
    return TlsCluster(port, password, ca, wrong_ca, pgdata)


def stop_tls_cluster(cluster: TlsCluster) -> None:
    try:
        _Runner().run("pg_ctl", "-D", str(cluster.pgdata), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(cluster.pgdata.parent, ignore_errors=True)
