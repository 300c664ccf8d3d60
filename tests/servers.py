"""Real database servers for the tests, started from the binaries on the machine.

Tests run against real PostgreSQL and MariaDB, never mocks, so each pytest-xdist worker starts
throwaway servers of its own: a fresh ``initdb`` (or ``mariadb-install-db``) in a temporary
folder, listening on 127.0.0.1 on a free port, tuned for speed over durability (the data dies
with the test session anyway).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pymysql
from psycopg import sql

PG_BIN = Path(os.environ.get("GOVERNOR_PG_BIN", "/usr/lib/postgresql/15/bin"))
_OS_USER = "postgres"  # initdb refuses root, so as root the cluster belongs to this user
_START_TIMEOUT = 60.0


def free_port() -> int:
    """A port nobody listens on right now (the server retries if another process takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_cluster_owner(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", _OS_USER, "--", *argv]
    return argv


class PostgresServer:
    """A private PostgreSQL cluster: ``start()`` it, use its URLs, ``stop()`` it (removes it)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="governor-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log_file = self.root / "server.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """A libpq connection string, for tests that talk to the server with psycopg directly."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def start(self) -> PostgresServer:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, _OS_USER)
            shutil.chown(self.socket_dir, _OS_USER)
        subprocess.run(
            _as_cluster_owner(
                [
                    str(PG_BIN / "initdb"),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    "postgres",
                    "--auth",
                    "trust",
                    "--encoding",
                    "UTF8",
                    "--locale",
                    "C",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        for _attempt in range(5):
            self.port = free_port()
            if self._launch():
                return self
        raise RuntimeError(f"PostgreSQL did not start; see {self.log_file}")

    def _launch(self) -> bool:
        """Start the postmaster on ``self.port``; False if it exited (port taken, most likely)."""
        log = open(self.log_file, "ab")  # noqa: SIM115 - the server writes to it until it stops
        try:
            self._process = subprocess.Popen(
                _as_cluster_owner(
                    [
                        str(PG_BIN / "postgres"),
                        "-D",
                        str(self.data_dir),
                        "-p",
                        str(self.port),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        f"unix_socket_directories={self.socket_dir}",
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=200",
                    ]
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            try:
                with psycopg.connect(self.conninfo(), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"PostgreSQL was not ready after {_START_TIMEOUT:.0f}s; see {self.log_file}")

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop the database even if a test left connections open to it."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), then remove the cluster's folder."""
        process, self._process = self._process, None
        if process is not None:
            pid_file = self.data_dir / "postmaster.pid"
            try:
                postmaster = int(pid_file.read_text().split("\n", 1)[0])
                os.kill(postmaster, signal.SIGINT)
            except (OSError, ValueError):
                process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _mariadb_program(*names: str) -> str:
    """The first of ``names`` on the PATH or in /usr/sbin, where Debian puts the server."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin")
        if found:
            return found
    raise RuntimeError(f"none of {', '.join(names)} is installed (Debian package mariadb-server)")


class MariaDBServer:
    """A private MariaDB server: ``start()`` it, use its URLs, ``stop()`` it (removes it).

    The root user has no password and reaches the server over 127.0.0.1 only. As root, the
    server runs as the ``mysql`` OS user, which the Debian package creates. Durability is traded
    for speed: no binary log, the redo log flushed about once a second, no doublewrite.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="governor-mariadb-"))
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}"

    def _user_options(self) -> list[str]:
        if os.geteuid() == 0:
            shutil.chown(self.root, "mysql")
            return ["--user=mysql"]
        return []

    def start(self) -> MariaDBServer:
        subprocess.run(
            [
                _mariadb_program("mariadb-install-db", "mysql_install_db"),
                "--no-defaults",
                *self._user_options(),
                f"--datadir={self.data_dir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            check=True,
            capture_output=True,
        )
        for _attempt in range(5):
            self.port = free_port()
            if self._launch():
                return self
        raise RuntimeError(f"MariaDB did not start; see {self.log_file}")

    def _launch(self) -> bool:
        """Start mariadbd on ``self.port``; False if it exited (port taken, most likely)."""
        self._process = subprocess.Popen(
            [
                _mariadb_program("mariadbd", "mysqld"),
                "--no-defaults",
                *self._user_options(),
                f"--datadir={self.data_dir}",
                f"--socket={self.root / 'mysqld.sock'}",
                f"--pid-file={self.root / 'mysqld.pid'}",
                f"--log-error={self.log_file}",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--character-set-server=utf8mb4",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--innodb-buffer-pool-size=64M",
                "--innodb-use-native-aio=0",
                "--max-connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2).close()
                return True
            except pymysql.err.OperationalError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"MariaDB was not ready after {_START_TIMEOUT:.0f}s; see {self.log_file}")

    def execute(self, statement: str) -> None:
        """Run one administrative statement as root (identifiers are the caller's to quote)."""
        connection = pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def create_database(self, name: str) -> str:
        self.execute(f"CREATE DATABASE `{name}`")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def stop(self) -> None:
        """Shut down (SIGTERM), then remove the server's folder."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> MariaDBServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
