"""A real PostgreSQL server for the tests: a throw-away cluster started on a free local port.

``initdb`` + ``pg_ctl`` from the machine's PostgreSQL (Debian's ``postgresql`` package, which
``.ci/run`` installs when it is missing), run as the ``postgres`` user when the tests run as root
(PostgreSQL refuses to run as root). The cluster asks for a password (SCRAM) over TCP on 127.0.0.1
only, so the tests go through real password authentication. ``FEATRIX_TEST_POSTGRES_URL``
(``postgresql://user:password@host:port/db``) points the tests at an existing server instead.
Without either, the PostgreSQL tests skip, unless ``FEATRIX_REQUIRE_POSTGRES=1`` (CI) makes that a
failure.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from tests.ports import free_port

USER = "featrix"


@dataclass
class Server:
    host: str
    port: int
    user: str
    password: str
    database: str = "postgres"

    def url(self, database: str | None = None, with_password: bool = False) -> str:
        auth = f"{self.user}:{self.password}" if with_password else self.user
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database or self.database}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its name."""
        import psycopg
        from sqlglot import exp

        with psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                             dbname=self.database, autocommit=True) as con:
            con.execute(exp.Create(this=exp.to_identifier(name, quoted=True), kind="DATABASE").sql(dialect="postgres"))
        return name


def binaries() -> Path | None:
    """The folder holding initdb and pg_ctl (newest PostgreSQL first), or None."""
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip()
        if out and Path(out, "initdb").exists():
            return Path(out)
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True):
        if Path(folder, "initdb").exists():
            return Path(folder)
    return None



class Cluster:
    """``start()`` a cluster in a temporary folder; ``stop()`` ends it and removes the folder."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="featrix-pg-"))
        self.as_root = os.geteuid() == 0
        self.started = False

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}): {done.stderr.strip()[-800:]}")

    def start(self) -> Server:
        password = secrets.token_urlsafe(18)
        (self.root / "pw").write_text(password)
        if self.as_root:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.root / "pw", "postgres")
        data, port = self.root / "data", free_port()
        self._run("initdb", "-D", str(data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={self.root / 'pw'}",
                  "-E", "UTF8", "--no-locale", "--no-sync")
        (self.root / "pw").unlink()
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.root / "server.log"), "-w", "-t", "120",
                  "start")
        self.started = True
        return Server("127.0.0.1", port, USER, password)

    def stop(self) -> None:
        if self.started:
            try:
                self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
            finally:
                self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


def from_environment() -> Server | None:
    url = os.environ.get("FEATRIX_TEST_POSTGRES_URL")
    if not url:
        return None
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return Server(u.host or "127.0.0.1", u.port or 5432, u.username or "postgres", u.password or "", u.database or "postgres")
