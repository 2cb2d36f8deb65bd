"""The Celery app, its queues and its beat schedule: all of them in this one place."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from celery import Celery, bootsteps
from celery.schedules import crontab
from kombu import Queue

if TYPE_CHECKING:
    from redis import Redis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# Queue names. GPU work gets its own queue, served by a worker with concurrency 1.
DEFAULT_QUEUE = "default"
INGEST_QUEUE = "ingest"
JUDGE_QUEUE = "judge"
NIGHTLY_QUEUE = "nightly"
GPU_QUEUE = "gpu"
QUEUES = (DEFAULT_QUEUE, INGEST_QUEUE, JUDGE_QUEUE, NIGHTLY_QUEUE, GPU_QUEUE)
CPU_QUEUES = (DEFAULT_QUEUE, INGEST_QUEUE, JUDGE_QUEUE, NIGHTLY_QUEUE)

logger = logging.getLogger(__name__)

# Every worker writes, this often, one key per queue it consumes; a key lives three beats,
# so /healthz can tell which queues have a worker that answered recently.
WORKER_HEARTBEAT_SECONDS = 20
WORKER_HEARTBEAT_TTL_SECONDS = 3 * WORKER_HEARTBEAT_SECONDS


def worker_heartbeat_key(queue: str) -> str:
    return f"plumbline:worker-alive:{queue}"


def redis_client(*, timeout: float = 2.0) -> Redis:
    """A client of the Redis the broker runs on (REDIS_URL), failing fast when it is down."""
    from django.conf import settings
    from redis import Redis

    return Redis.from_url(
        settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Writes the worker's liveness for each queue it consumes. The timer runs in the
    worker's main process, so a worker busy with a long task still counts as alive (its
    task has its own time limit); a dead or stopped one expires within the TTL."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref = None

    def start(self, worker: Any) -> None:
        queues = sorted(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        self.beat(worker.hostname, queues)
        self.tref = worker.timer.call_repeatedly(
            WORKER_HEARTBEAT_SECONDS, self.beat, (worker.hostname, queues)
        )

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()

    @staticmethod
    def beat(hostname: str, queues: list[str]) -> None:
        from redis.exceptions import RedisError

        try:
            with redis_client() as client:
                pipe = client.pipeline()
                for queue in queues:
                    pipe.set(worker_heartbeat_key(queue), hostname, ex=WORKER_HEARTBEAT_TTL_SECONDS)
                pipe.execute()
        except RedisError as exc:  # the broker is down: the worker reconnects on its own
            logger.warning("worker heartbeat not written: %s", exc)


app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_default_queue = DEFAULT_QUEUE
app.steps["worker"].add(WorkerHeartbeat)
app.conf.imports = (
    "workers.answers",
    "workers.documents",
    "workers.judging",
    "workers.references",
    "workers.training",
)

# Synced into django-celery-beat's tables on beat start-up, where admins can edit them.
app.conf.beat_schedule = {
    # A worker killed mid-ingest leaves its document "processing"; put it back in the queue.
    "documents-requeue-stalled": {
        "task": "documents.requeue_stalled",
        "schedule": crontab(minute="*/10"),
    },
    # An answer whose web process died or hung mid-answer would show "generating" forever
    # (opening or retrying it also fails it; this catches the ones nobody opens again).
    "answers-fail-stale": {
        "task": "answers.fail_stale",
        "schedule": crontab(minute="*/5"),
    },
    # A judgement that failed (API down, rate limit) is tried again once its backoff is over.
    # An ingest message lost to a broker outage leaves its document "queued"; send it again.
    "documents-resend-queued": {
        "task": "documents.resend_queued",
        "schedule": crontab(minute="*/5"),
    },
    "judging-retry-failed": {
        "task": "judging.retry_failed",
        "schedule": crontab(minute="*/15"),
    },
    # Every answer gets judged even when its on-answer task was lost (broker down), in one
    # bulk request, before the night's preference building reads the scores.
    "judging-nightly": {
        "task": "judging.judge_nightly",
        "schedule": crontab(hour=1, minute=0),
    },
    # The learning loop, after the night's judging: one run at a time on the gpu queue.
    "training-nightly": {
        "task": "training.nightly",
        "schedule": crontab(hour=2, minute=30),
    },
    # A training run whose worker died would otherwise show "running" forever.
    "training-fail-stalled": {
        "task": "training.fail_stalled",
        "schedule": crontab(minute="*/10"),
    },
}
