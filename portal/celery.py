"""The Celery app, its queues and its beat schedule: all of them in this one place."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

# Queue names. GPU work gets its own queue, served by a worker with concurrency 1.
DEFAULT_QUEUE = "default"
INGEST_QUEUE = "ingest"
JUDGE_QUEUE = "judge"
NIGHTLY_QUEUE = "nightly"
GPU_QUEUE = "gpu"
QUEUES = (DEFAULT_QUEUE, INGEST_QUEUE, JUDGE_QUEUE, NIGHTLY_QUEUE, GPU_QUEUE)
CPU_QUEUES = (DEFAULT_QUEUE, INGEST_QUEUE, JUDGE_QUEUE, NIGHTLY_QUEUE)

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_default_queue = DEFAULT_QUEUE
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
