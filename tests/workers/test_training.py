"""The learning loop through a real ``gpu`` worker process on the tiny model: the nightly
chain end to end, a redelivered run, a run cancelled while it trains, and one whose
process is killed (SIGKILL) mid-training."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.adapters.models import AdapterVersion
from apps.adapters.selectors import served_target
from apps.qa.models import Answer
from apps.training.models import LoopRun, RunMetric, TrainingRun
from apps.training.services.data import preferences_build
from apps.training.services.runs import run_cancel, run_create
from tests import support
from tests.apps.training.conftest import (
    SMALL,
    feedback_history,
    reference_sets,
    small_settings_env,
)
from tests.question_writer import question_writer
from workers.training import bootstrap, nightly, train

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def writer_url() -> Iterator[str]:
    with question_writer() as url:
        yield url


@pytest.fixture(scope="module")
def gpu_worker(
    worker_env: dict[str, str],
    tiny_model: Path,
    tiny_gguf: Path,
    writer_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[object]:
    env = {
        **worker_env,
        # The tiny model writes no usable question: a loopback stand-in for the larger
        # writer a deployment configures does.
        "SYNTHESIS_BASE_URL": writer_url,
        "SYNTHESIS_MODEL": "writer",
        # The default engine: llama.cpp answers, evaluates and samples PPO's rollouts.
        **small_settings_env(tiny_model, Path(worker_env["PORTAL_VAR_DIR"]), tiny_gguf),
        # This worker's gate lets any candidate through: these tests are about the chain.
        "PROMOTION_MARGIN": "-10",
        "PROMOTION_TOLERANCE": "10",
    }
    from portal.celery import GPU_QUEUE

    support.purge_queue(GPU_QUEUE)  # nothing left by earlier tests
    log = Path(tmp_path_factory.mktemp("gpu-worker")) / "worker.log"
    process = support.start_worker(env, queues="gpu", name="gpu-test", log=log)
    yield process
    support.stop(process)


@pytest.fixture
def portal(settings, tiny_model: Path, small_pdf: bytes, tmp_path: Path) -> None:
    settings.TRAINING_DEFAULTS = SMALL
    support.ingest("UFC_3-410-01_2013_c9_HVAC_Criteria.pdf", small_pdf)
    reference_sets(tmp_path)
    feedback_history()


def test_a_new_library_bootstraps_its_supervised_stage(portal: None, gpu_worker: object):
    bootstrap.delay()
    bootstrap.delay()  # queued twice (two starts, a redelivery): it runs once
    support.wait_for(
        lambda: (
            LoopRun.objects.filter(key="bootstrap").exclude(status=LoopRun.Status.RUNNING).exists()
        ),
        timeout=420,
        interval=1,
        message="the bootstrap loop",
    )
    loop = LoopRun.objects.get(key="bootstrap")
    assert loop.status == LoopRun.Status.PROMOTED, (loop.error, loop.steps)
    assert [s["step"] for s in loop.steps] == [
        "synthesize",
        "build_sft",
        "train_sft",
        "evaluate_served_sft",
        "evaluate_candidate_sft",
        "promote_sft",
    ]
    synthesized = loop.steps[0]["result"]
    assert synthesized["passed"] >= 1 and synthesized["heldout"] >= 1
    sft = TrainingRun.objects.get(algorithm="sft")
    assert sft.parent_version == "base" and sft.version == loop.candidate
    assert served_target().version == loop.candidate
    # What measures never taught: no SFT example comes from a held-out set.
    assert sft.snapshot is not None
    taught = set(sft.snapshot.examples.values_list("reference__reference_set__name", flat=True))
    assert taught == {"training"}
    assert LoopRun.objects.filter(key="bootstrap").count() == 1
    support.wait_for(
        lambda: not LoopRun.objects.filter(status=LoopRun.Status.RUNNING).exists(),
        timeout=60,
        message="the second delivery",
    )
    assert LoopRun.objects.count() == 1


def _status(run_id: int) -> str:
    return TrainingRun.objects.values_list("status", flat=True).get(pk=run_id)


def test_the_nightly_chain_runs_end_to_end(portal: None, gpu_worker: object, tiny_gguf: Path):
    nightly.delay()
    support.wait_for(
        lambda: LoopRun.objects.exclude(status=LoopRun.Status.RUNNING).exists(),
        timeout=420,
        interval=1,
        message="the nightly loop",
    )
    loop = LoopRun.objects.get()
    assert loop.status == LoopRun.Status.PROMOTED, (loop.error, loop.steps)
    assert [s["step"] for s in loop.steps] == [
        "sample_answers",
        "build_preferences",
        "train_reward",
        "train_ppo",
        "evaluate_served",
        "evaluate_candidate",
        "promote",
    ]
    ppo = TrainingRun.objects.get(algorithm="ppo")
    assert ppo.reward_run is not None
    assert ppo.reward_run.algorithm == "reward" and ppo.version == loop.candidate
    assert RunMetric.objects.filter(run=ppo).count() == SMALL["ppo"]["total_updates"]
    assert served_target().version == loop.candidate
    assert loop.steps[0]["result"]["answers"] == 4  # 2 questions x 2 samples, judged
    candidate = AdapterVersion.objects.get(version=loop.candidate)
    assert candidate.manifest["config"]["rollout_gguf"] == str(tiny_gguf)  # fast rollouts
    assert Answer.objects.filter(origin="evaluation", model_name="tiny").exists()


def test_a_redelivered_run_trains_once(portal: None, gpu_worker: object):
    preferences_build(min_margin=1.0)
    run = run_create(algorithm="dpo", enqueue=False)
    for _ in range(3):
        train.delay(run.pk)
    support.wait_for(lambda: _status(run.pk) == "succeeded", timeout=300, message="dpo run")
    run.refresh_from_db()
    # One training: TRL's end-of-training summary (train_runtime) was logged once.
    rows = [v for v in RunMetric.objects.filter(run=run).values_list("values", flat=True)]
    assert sum("train_runtime" in values for values in rows) == 1
    assert AdapterVersion.objects.filter(algorithm="dpo").count() == 1
    assert TrainingRun.objects.get(pk=run.pk).started_at == run.started_at


def _visible_adapters(settings) -> set[str]:
    folder = Path(settings.ADAPTERS_DIR)
    return (
        {p.name for p in folder.iterdir() if not p.name.startswith(".")}
        if folder.exists()
        else set()
    )


def _long_run_training() -> TrainingRun:
    """A DPO run long enough to be caught mid-training, once it has taken a step."""
    preferences_build(min_margin=1.0)
    run = run_create(algorithm="dpo", config={"num_train_epochs": 200})
    support.wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).progress_done >= 1,
        timeout=300,
        message="the run to start training",
    )
    return run


def test_a_run_cancelled_while_training_keeps_nothing(portal: None, gpu_worker: object):
    served = served_target().version
    run = _long_run_training()
    run_cancel(run_id=run.pk)
    support.wait_for(lambda: _status(run.pk) == "cancelled", timeout=120, message="cancel")
    assert not AdapterVersion.objects.filter(version__startswith=f"dpo-{run.pk}-").exists()
    assert served_target().version == served


def test_a_worker_killed_mid_training_fails_the_run_and_serves_nothing_new(
    portal: None, gpu_worker: object, settings
):
    import os
    import signal
    import time
    from datetime import timedelta

    from django.utils import timezone

    from apps.training.services.runs import runs_fail_stalled

    served, before = served_target().version, _visible_adapters(settings)
    run = _long_run_training()
    children = Path(f"/proc/{gpu_worker.pid}/task/{gpu_worker.pid}/children")  # type: ignore[attr-defined]
    for pid in children.read_text().split():  # the process training, not the worker
        os.kill(int(pid), signal.SIGKILL)
    time.sleep(3)  # the message comes back (reject on worker lost); the run's claim stops it
    assert _status(run.pk) == "running"
    # Without a heartbeat for STALLED_AFTER, the sweep fails it with the reason.
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert runs_fail_stalled() == 1
    run.refresh_from_db()
    assert run.status == "failed" and "killed or lost" in run.error
    assert not AdapterVersion.objects.filter(version__startswith=f"dpo-{run.pk}-").exists()
    assert _visible_adapters(settings) == before and served_target().version == served
    # The worker lives on: its pool starts a new process for the next run.
    support.wait_for(
        lambda: children.read_text().split() != [], timeout=60, message="a new pool process"
    )
