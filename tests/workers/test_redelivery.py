"""Every kind of task, delivered twice (a doubled beat, a redelivered message, two workers
taking the same job): the second delivery changes nothing and loses nothing.

The tasks that do real work have their redelivery test beside their worker tests; the
table below names each one, and the first test fails when a task is added without one.
The sweeps and the synthesis are delivered twice here, through the task itself."""

from __future__ import annotations

import importlib
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from apps.documents.models import Document
from apps.judging.models import Judgement
from apps.qa.models import Answer, Conversation
from apps.references.models import Reference
from apps.training.models import LoopRun, TrainingRun
from portal.celery import app as celery_app
from tests import support

pytestmark = pytest.mark.django_db

REDELIVERY_TESTS = {
    "documents.ingest": "tests.workers.test_documents::test_a_redelivered_message_does_not_ingest_twice",
    "judging.judge_answer": "tests.workers.test_judging::test_a_redelivered_message_judges_once",
    "training.train": "tests.workers.test_training::test_a_redelivered_run_trains_once",
    "training.nightly": "tests.apps.training.test_loop::test_a_loop_key_claims_the_run_and_a_running_loop_blocks_another",
    "training.bootstrap": "tests.workers.test_training::test_a_new_library_bootstraps_its_supervised_stage",
    # It only sends judge_answer messages again; a doubled one is that task's redelivery.
    "judging.retry_failed": "tests.workers.test_judging::test_a_redelivered_message_judges_once",
    "judging.judge_nightly": __name__ + "::test_the_nightly_judging_twice_judges_once",
    "references.generate_synthetic": __name__
    + "::test_synthesis_delivered_twice_at_once_writes_each_pair_once",
    "answers.fail_stale": __name__ + "::test_each_sweep_delivered_twice_acts_once",
    "documents.requeue_stalled": __name__ + "::test_each_sweep_delivered_twice_acts_once",
    "documents.resend_queued": __name__ + "::test_each_sweep_delivered_twice_acts_once",
    "training.fail_stalled": __name__ + "::test_each_sweep_delivered_twice_acts_once",
}


def test_every_task_has_a_redelivery_test():
    celery_app.loader.import_default_modules()
    ours = {name for name in celery_app.tasks if not name.startswith("celery.")}
    assert ours == set(REDELIVERY_TESTS), "a task without a redelivery test, or a stale entry"
    for node in REDELIVERY_TESTS.values():
        module, function = node.split("::")
        assert callable(getattr(importlib.import_module(module), function)), node


def _twice(name: str, *args: Any) -> tuple[Any, Any]:
    celery_app.loader.import_default_modules()
    task = celery_app.tasks[name]
    return task.apply(args).get(), task.apply(args).get()


def test_each_sweep_delivered_twice_acts_once(settings, redis_url: str):
    long_ago = timezone.now() - timedelta(days=1)
    # An answer stuck in "generating".
    settings.ANSWER_STALE_SECONDS = 60
    conversation = Conversation.objects.create(title="q")
    stuck = Answer.objects.create(
        conversation=conversation, question="How wide must aisles be?", status="generating"
    )
    Answer.objects.filter(pk=stuck.pk).update(started_at=long_ago, heartbeat_at=long_ago)
    # A document whose ingest stopped, and one whose ingest message was lost.
    stalled = support.upload("stalled.md", b"# S\n\nText.\n", enqueue=False).document
    Document.objects.filter(pk=stalled.pk).update(status="processing", heartbeat_at=long_ago)
    stranded = support.upload("stranded.md", b"# T\n\nOther.\n", enqueue=False).document
    Document.objects.filter(pk=stranded.pk).update(heartbeat_at=long_ago)
    # A training run and a loop that stopped.
    run = TrainingRun.objects.create(algorithm="dpo", status="running", heartbeat_at=long_ago)
    loop = LoopRun.objects.create()
    LoopRun.objects.filter(pk=loop.pk).update(started_at=long_ago)

    assert _twice("answers.fail_stale") == (1, 0)
    assert _twice("documents.requeue_stalled") == (1, 0)
    assert _twice("documents.resend_queued") == (1, 0)
    assert _twice("training.fail_stalled") == (2, 0)

    stuck.refresh_from_db()
    assert stuck.status == "failed" and stuck.question == "How wide must aisles be?"
    stalled.refresh_from_db()
    assert (stalled.status, stalled.ingest_stalls) == ("queued", 1)
    assert Document.objects.get(pk=stranded.pk).status == "queued"
    assert TrainingRun.objects.get(pk=run.pk).status == "failed"
    assert LoopRun.objects.get(pk=loop.pk).status == "failed"
    support.purge_queue("ingest")


def test_the_nightly_judging_twice_judges_once(small_pdf: bytes):
    document = support.ingest("ufc.pdf", small_pdf)
    chunk = document.chunks.order_by("ordinal").first()
    conversation = Conversation.objects.create(title="q")
    answer = Answer.objects.create(
        conversation=conversation,
        question="What temperature limits apply to battery charging rooms?",
        text="Between 10 °C and 35 °C [1].",
        status=Answer.Status.DONE,
        retrieved=[{"number": 1, "chunk_id": chunk.pk}],
    )
    first, second = _twice("judging.judge_nightly")
    assert (first["done"], second["claimed"]) == (1, 0), (first, second)
    judgement = Judgement.objects.get(answer=answer)
    assert judgement.status == Judgement.Status.DONE and judgement.attempts == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(300)
def test_synthesis_delivered_twice_at_once_writes_each_pair_once(small_pdf: bytes):
    """Two deliveries of the same message run side by side and pick the same sentences
    (same seed): each sentence gets one pair."""
    document = support.ingest("ufc.pdf", small_pdf)
    celery_app.loader.import_default_modules()
    task = celery_app.tasks["references.generate_synthetic"]
    results: list[Any] = []
    start = threading.Barrier(2)

    def deliver() -> None:
        start.wait()
        try:
            results.append(task.apply((8, document.pk)).get())
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2, results
    pairs = list(
        Reference.objects.filter(source=Reference.Source.SYNTHETIC).values_list("chunk_id", "quote")
    )
    assert len(pairs) == len(set(pairs)) == 8
    assert sorted(r["attempted"] for r in results) == [0, 8]
    assert sorted(r["already_written"] for r in results) == [0, 8]
