from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings

from portal.celery import DEFAULT_QUEUE, GPU_QUEUE


@shared_task(
    name="training.train",
    queue=GPU_QUEUE,
    # The claim in run_execute makes a redelivered message a no-op, so late acks are safe;
    # the broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT) outlasts the longest run.
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.LONG_TASK_TIME_LIMIT,
    time_limit=settings.LONG_TASK_TIME_LIMIT + 60,
)
def train(run_id: int) -> str:
    from apps.training.services.runs import run_execute

    return run_execute(run_id=run_id).status


@shared_task(
    name="training.nightly",
    queue=GPU_QUEUE,
    soft_time_limit=settings.LONG_TASK_TIME_LIMIT,
    time_limit=settings.LONG_TASK_TIME_LIMIT + 60,
)
def nightly() -> str:
    # Not acks_late: a loop that dies half-way is not re-run until the next night. The
    # night's key makes a doubled beat or a redelivered message a no-op.
    from django.utils import timezone

    from apps.training.services.loop import loop_run

    return loop_run(key=f"nightly-{timezone.localdate():%Y-%m-%d}").status


@shared_task(
    name="training.bootstrap",
    queue=GPU_QUEUE,
    bind=True,
    max_retries=240,
    soft_time_limit=settings.LONG_TASK_TIME_LIMIT,
    time_limit=settings.LONG_TASK_TIME_LIMIT + 60,
)
def bootstrap(self: Task) -> str:
    # Queued once by `manage.py up` after the first ingest; it waits (30 s at a time, up to
    # two hours) for the library to finish ingesting, then runs the supervised stage once.
    from apps.training.services.loop import LibraryNotReady, loop_bootstrap

    try:
        return loop_bootstrap().status
    except LibraryNotReady as exc:
        raise self.retry(exc=exc, countdown=30) from exc


@shared_task(name="training.fail_stalled", queue=DEFAULT_QUEUE)
def fail_stalled() -> int:
    from apps.training.services.loop import loops_fail_stalled
    from apps.training.services.runs import runs_fail_stalled

    return runs_fail_stalled() + loops_fail_stalled()
