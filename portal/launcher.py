"""``manage.py up``: the whole portal as one process group.

The launcher holds the embedded PostgreSQL open, starts the embedded Redis, and runs
gunicorn, a CPU Celery worker, a GPU-queue worker (concurrency 1) and Celery beat as
children that get DATABASE_URL and REDIS_URL in their environment. A worker or beat that
exits is started again, with a growing delay, and the log says how it ended; the web
server exiting, Ctrl-C or SIGTERM stops them all within a few seconds.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from portal.celery import CPU_QUEUES, GPU_QUEUE
from portal.embedded import EmbeddedRedis

# Celery's warm shutdown waits for running tasks; they are redelivered (late acks) and
# their claims and sweeps take them over, so waiting longer than this buys nothing.
STOP_GRACE_SECONDS = 5.0
RESTART_DELAY_MAX_SECONDS = 60.0
# A child that ran this long before it exited starts again after the shortest delay.
RESTART_RESET_AFTER_SECONDS = 120.0


@dataclass
class Child:
    name: str
    argv: list[str]
    restart: bool = False  # started again when it exits (workers, beat); else the portal stops
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.argv, env=env)
        self.started_at = time.monotonic()
        self.restart_at = None


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class Launcher:
    host: str
    port: int
    var_dir: Path
    database_url: str | None
    redis_url: str | None
    web_workers: int = 2
    cpu_concurrency: int = 2
    children: list[Child] = field(default_factory=list)
    redis: EmbeddedRedis | None = None
    log: Callable[[str], None] = print

    def check_port(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((self.host, self.port))
            except OSError as exc:
                raise SystemExit(
                    f"Port {self.port} on {self.host} is taken ({exc.strerror}). "
                    f"Stop what uses it or choose another: PORTAL_PORT=8010 make up"
                ) from exc

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PORTAL_VAR_DIR"] = str(self.var_dir)
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        elif self.redis_url:
            env["REDIS_URL"] = self.redis_url
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def start_redis(self) -> None:
        if self.redis_url:
            return
        self.redis = EmbeddedRedis(self.var_dir)
        self.redis.start()

    def plan(self) -> list[Child]:
        bin_dir = Path(sys.executable).parent
        celery = [str(bin_dir / "celery"), "-A", "portal"]
        return [
            Child(
                "web",
                [
                    str(bin_dir / "gunicorn"),
                    "portal.wsgi:application",
                    "--config",
                    "python:portal.gunicorn_conf",
                    "--bind",
                    f"{self.host}:{self.port}",
                    "--workers",
                    str(self.web_workers),
                    "--worker-class",
                    "gthread",
                    "--threads",
                    "8",
                    "--timeout",
                    "120",
                    # Longer than browsers' polling intervals, so a reused connection is not
                    # closed just as the next request arrives.
                    "--keep-alive",
                    "15",
                    "--access-logfile",
                    "-",
                ],
            ),
            Child(
                "worker",
                [
                    *celery,
                    "worker",
                    "-Q",
                    ",".join(CPU_QUEUES),
                    "-c",
                    str(self.cpu_concurrency),
                    "-n",
                    "cpu@%h",
                    "--loglevel",
                    "INFO",
                ],
                restart=True,
            ),
            Child(
                "gpu-worker",
                [
                    *celery,
                    "worker",
                    "-Q",
                    GPU_QUEUE,
                    "-c",
                    "1",
                    "--prefetch-multiplier",
                    "1",
                    "-n",
                    "gpu@%h",
                    "--loglevel",
                    "INFO",
                ],
                restart=True,
            ),
            Child(
                "beat",
                [
                    *celery,
                    "beat",
                    "--scheduler",
                    "django_celery_beat.schedulers:DatabaseScheduler",
                    "--pidfile",
                    "",
                    "--loglevel",
                    "INFO",
                ],
                restart=True,
            ),
        ]

    def run(self, on_ready: Callable[[], None]) -> int:
        env = self.environment()
        self.children = self.plan()
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            if stopping:  # a second Ctrl-C: no grace at all
                self.stop(grace=0)
                raise SystemExit(130)
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        for child in self.children:
            child.start(env)
        on_ready()
        exit_code = 0
        while not stopping:
            for child in self.children:
                if self._supervise(child, env):
                    assert child.process is not None
                    exit_code = child.process.returncode or 1
                    stopping = True
                    break
            time.sleep(0.2)
        self.stop()
        return exit_code

    def _supervise(self, child: Child, env: dict[str, str]) -> bool:
        """Restarts ``child`` once its delay is over if it exited; True when its exit
        stops the portal."""
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                self.log(f"starting {child.name} again (restart {child.restarts}).")
                child.start(env)
            return False
        assert child.process is not None
        code = child.process.poll()
        if code is None:
            return False
        if not child.restart:
            self.log(f"{child.name} {_how_it_ended(code)}; stopping the portal.")
            return True
        if now - child.started_at >= RESTART_RESET_AFTER_SECONDS:
            child.restarts = 0
        delay = min(RESTART_DELAY_MAX_SECONDS, 2.0**child.restarts)
        child.restarts += 1
        child.restart_at = now + delay
        self.log(
            f"{child.name} {_how_it_ended(code)} after {now - child.started_at:.0f} s; "
            f"starting it again in {delay:.0f} s (see its last lines above)."
        )
        return False

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM to every child, then SIGKILL to whatever of the whole process tree is
        still alive after ``grace`` seconds: no orphaned web or pool worker survives."""
        import psutil

        tree = psutil.Process().children(recursive=True)
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{child.name} did not stop within {grace:.0f} s; killing it.")
        for process in tree:
            if (
                self.redis is not None
                and self.redis.process is not None
                and process.pid == self.redis.process.pid
            ):
                continue
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    process.kill()
            except psutil.NoSuchProcess:
                continue
        for child in self.children:
            if child.process is not None:
                child.process.poll()  # reap
        if self.redis is not None:
            self.redis.stop()
