"""A throw-away PostgreSQL server for the end-to-end tests: the real server binaries, never a mock.

    initdb -D DIR/data -U postgres -A trust -E UTF8 --locale=C --no-sync
    pg_ctl -D DIR/data -l DIR/server.log -w start -o "-p PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories= ..."
    ... pg_ctl -D DIR/data -m fast -w stop

on a fresh temporary directory and a free port on 127.0.0.1, trust authentication (nothing but this
machine can reach it). initdb and postgres refuse to run as root, so as root both run as the `postgres`
system user (Debian's postgresql packages create it) through runuser.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """The directory of `postgres`, `initdb`, `pg_ctl` and `psql`: $POSTGRES_BINDIR, Debian's newest
    /usr/lib/postgresql/N/bin, then whatever `pg_ctl` is on PATH."""
    candidates = [os.environ.get("POSTGRES_BINDIR")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    on_path = shutil.which("pg_ctl")
    candidates.append(str(Path(on_path).parent) if on_path else None)
    for candidate in candidates:
        if candidate and all(os.access(Path(candidate, name), os.X_OK) for name in ("postgres", "initdb", "pg_ctl", "psql")):
            return Path(candidate)
    return None


def server_user() -> str | None:
    """Who runs the server: None (this process's user) unless we are root, then `postgres`."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root and there is no `postgres` user to run initdb/postgres as") from None
    return "postgres"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    bindir: Path
    root: Path  # temporary directory: data/ and server.log
    port: int
    user: str | None  # system user the server runs as (None: the current one)
    host: str = "127.0.0.1"

    @classmethod
    def start(cls, bindir: Path) -> PostgresServer:
        user = server_user()
        root = Path(tempfile.mkdtemp(prefix="tap-klaviyo-postgres-"))
        if user:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(bindir=bindir, root=root, port=free_port(), user=user)
        try:
            server._as_server_user(
                "initdb", "-D", str(root / "data"), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
            )
            for attempt in range(3):  # the free port can be taken between free_port() and the bind
                # The server's default TimeZone is not UTC, as on many real servers: date-times must still
                # land as the right instant (meltano.yml sets the loader's session to UTC with PGTZ).
                options = (
                    f"-p {server.port} -c listen_addresses={server.host} -c unix_socket_directories= "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c TimeZone=America/New_York"
                )
                try:
                    server._as_server_user(
                        "pg_ctl", "-D", str(root / "data"), "-l", str(root / "server.log"), "-w", "-t", "60", "-o", options, "start"
                    )
                    break
                except RuntimeError as exc:
                    if attempt == 2 or "could not bind" not in str(exc):
                        raise
                    server.port = free_port()
        except BaseException:
            server.stop()
            raise
        return server

    def _as_server_user(self, program: str, *args: str) -> None:
        argv = [str(self.bindir / program), *args]
        if self.user:
            argv = ["runuser", "-u", self.user, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, cwd=self.root)
        if proc.returncode != 0:
            log = self.root / "server.log"
            raise RuntimeError(
                f"{' '.join(argv)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n"
                + (log.read_text()[-4000:] if log.exists() else "")
            )

    def stop(self) -> None:
        if (self.root / "data" / "postmaster.pid").exists():
            self._as_server_user("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "-t", "60", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run `sql` with psql (as the superuser over TCP), return its unaligned output."""
        argv = [str(self.bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", database]
        argv += ["-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, env=env)
        assert proc.returncode == 0, f"psql failed on {sql!r}: {proc.stderr}"
        return proc.stdout

    def query(self, sql: str, database: str = "postgres") -> list[dict]:
        """The rows of `sql` as dicts (through json_agg, so jsonb stays JSON and timestamps are ISO strings)."""
        out = self.psql(f"select coalesce(json_agg(q), '[]'::json) from ({sql}) q", database).strip()
        return json.loads(out)

    def create_database(self, name: str) -> None:
        self.psql(f'create database "{name}"')
