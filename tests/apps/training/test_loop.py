"""Evaluation, the promotion gate and the nightly chain, in-process on the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from apps.adapters.selectors import served_target
from apps.references.services import references_import
from apps.training.models import Evaluation, LoopRun, TrainingRun
from apps.training.services.evaluation import METRICS
from apps.training.services.loop import gate_check, loop_run
from tests import support
from tests.apps.training.conftest import feedback_history, reference_sets

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(300)]

SERVED = {
    "n": 40,
    "ai_score_mean": 3.9,
    "share_above_3": 0.781,
    "share_below_3": 0.219,
    "semantic_similarity": 0.64,
    "key_fact_recall": 0.5,
    "citation_accuracy": 0.6,
}


def test_the_gate_needs_a_gain_on_the_primary_metric_and_no_regression():
    better = {**SERVED, "ai_score_mean": 4.2, "share_above_3": 0.855, "share_below_3": 0.145}
    assert gate_check(candidate=better, served=SERVED, margin=0.1, tolerance=0.02).passed
    small_gain = {**SERVED, "ai_score_mean": 3.95}
    result = gate_check(candidate=small_gain, served=SERVED, margin=0.1, tolerance=0.02)
    assert not result.passed and "ai_score_mean 3.950 against 3.900" in result.reasons[0]
    regressed = {**better, "citation_accuracy": 0.5}
    result = gate_check(candidate=regressed, served=SERVED, margin=0.1, tolerance=0.02)
    assert result.reasons == ["citation_accuracy regressed 0.600 -> 0.500 (tolerance 0.02)"]
    more_below = {**better, "share_below_3": 0.3}  # lower is better for this one
    assert not gate_check(candidate=more_below, served=SERVED, margin=0.1, tolerance=0.02).passed
    fewer = {**better, "n": 39}
    assert not gate_check(candidate=fewer, served=SERVED, margin=0.1, tolerance=0.02).passed


@pytest.fixture
def portal(tiny_generator: Path, small_pdf: bytes, tmp_path: Path, settings) -> None:
    settings.LOOP_SUPERVISED_STAGE = False  # the supervised stage has tests of its own
    support.ingest("UFC_3-410-01_2013_c9_HVAC_Criteria.pdf", small_pdf)
    reference_sets(tmp_path)
    feedback_history()


def test_evaluate_prints_the_pilots_figures(portal: None, capsys: pytest.CaptureFixture):
    call_command("evaluate", "--set", "validation", "--adapter", "base", "--limit", "2", "--json")
    figures = json.loads(capsys.readouterr().out)
    assert set(figures) == {*METRICS, "ai_score_low", "ai_score_high"}
    assert figures["n"] == 2
    # The mean AI score comes with its 95% bootstrap interval.
    assert figures["ai_score_low"] <= figures["ai_score_mean"] <= figures["ai_score_high"]
    assert 0 <= figures["ai_score_mean"] <= 5 and -1 <= figures["semantic_similarity"] <= 1
    assert figures["share_above_3"] + figures["share_below_3"] <= 1
    evaluation = Evaluation.objects.get()
    assert evaluation.items.count() == 2 and all(i.comment for i in evaluation.items.all())
    with pytest.raises(CommandError, match="no adapter 'v9'"):
        call_command("evaluate", "--adapter", "v9")
    with pytest.raises(CommandError, match="no validated references"):
        call_command("evaluate", "--set", "nonexistent")


def test_similarity_is_measured_only_where_the_reference_answers(
    portal: None, tmp_path: Path, capsys: pytest.CaptureFixture
):
    """A right decline sits far from a reference that explains why the documents do not
    say: similarity leaves unanswerable questions out (declines are counted on their own)."""
    rows = [json.loads(line) for line in support.EVAL.read_text().splitlines()]
    mixed = [next(r for r in rows if r["answerable"]), next(r for r in rows if not r["answerable"])]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in mixed))
    references_import(path=path, set_name="mixed")
    call_command("evaluate", "--set", "mixed", "--adapter", "base", "--json")
    figures = json.loads(capsys.readouterr().out)
    items = {i.reference.answerable: i for i in Evaluation.objects.get().items.all() if i.reference}
    assert items[False].similarity is None and items[False].key_fact_recall is None
    assert items[True].similarity is not None and items[False].score is not None
    assert figures["n"] == 2 and figures["semantic_similarity"] == items[True].similarity


def test_a_candidate_that_fails_the_gate_is_not_served(portal: None, settings):
    settings.LOOP_SAMPLE_QUESTIONS = 1
    settings.LOOP_SAMPLES_PER_QUESTION = 2
    settings.LOOP_EVAL_LIMIT = 2
    settings.PROMOTION_MARGIN = 10.0  # no candidate can gain 10 points
    loop = loop_run(algorithm="dpo")
    assert loop.status == LoopRun.Status.KEPT, loop.error
    assert [s["step"] for s in loop.steps] == [
        "sample_answers",
        "build_preferences",
        "train_dpo",
        "evaluate_served",
        "evaluate_candidate",
    ]
    assert all(s["status"] == "done" for s in loop.steps)
    assert not loop.gate["passed"] and "needs a gain of at least 10" in loop.gate["reasons"][0]
    assert served_target().version == "base" and loop.candidate


def test_a_failing_step_stops_the_loop_and_serves_nothing(portal: None, settings):
    settings.LOOP_SAMPLE_QUESTIONS = 0
    small = settings.TRAINING_DEFAULTS
    settings.TRAINING_DEFAULTS = {**small, "ppo": {**small["ppo"], "kl_stop": 1e-9}}
    loop = loop_run(algorithm="ppo")
    assert loop.status == LoopRun.Status.FAILED and "TrainingDiverged" in loop.error
    assert loop.steps[-1]["step"] == "train_ppo" and loop.steps[-1]["status"] == "failed"
    assert served_target().version == "base"


def test_run_loop_command_promotes_when_the_gate_passes(
    portal: None, settings, capsys: pytest.CaptureFixture
):
    settings.LOOP_SAMPLE_QUESTIONS = 0
    settings.LOOP_EVAL_LIMIT = 2
    settings.PROMOTION_MARGIN = -10.0  # any candidate passes: this test is about promotion
    settings.PROMOTION_TOLERANCE = 10.0
    call_command("run_loop", "--algorithm", "kto", "--json")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = lines[-1]
    assert result["status"] == "promoted" and result["gate"]["passed"]
    assert [line["step"] for line in lines[:-1]][-1] == "promote"
    assert served_target().version == result["candidate"]
    # The pages people look at: the loop's before/after report and the PPO-free run chart.
    client = Client()
    client.force_login(support.make_user("sam", "smes"))
    loop_page = client.get(f"/training/loops/{result['loop']}/").content.decode()
    assert "Gate: passed" in loop_page and "Questions whose score changed most" in loop_page
    assert loop_page.count("<svg") >= 2
    run = TrainingRun.objects.get(version=result["candidate"])
    assert "<svg" in client.get(f"/training/runs/{run.pk}/").content.decode()
    assert client.get("/training/").status_code == 200
    call_command("rollback")
    assert served_target().version == "base"
    call_command("promote", result["candidate"])
    assert served_target().version == result["candidate"]
    with pytest.raises(CommandError, match="no adapter 'v9'"):
        call_command("promote", "v9")


def test_stalled_runs_and_loops_are_marked_failed():
    from datetime import timedelta

    from django.utils import timezone

    from apps.training.services.loop import loops_fail_stalled
    from apps.training.services.runs import runs_fail_stalled

    old = timezone.now() - timedelta(days=1)
    run = TrainingRun.objects.create(algorithm="dpo", status="running", heartbeat_at=old)
    fresh = TrainingRun.objects.create(
        algorithm="dpo", status="running", heartbeat_at=timezone.now()
    )
    loop = LoopRun.objects.create()
    LoopRun.objects.filter(pk=loop.pk).update(started_at=old)
    assert runs_fail_stalled() == 1 and loops_fail_stalled() == 1
    run.refresh_from_db()
    fresh.refresh_from_db()
    loop.refresh_from_db()
    assert (run.status, fresh.status, loop.status) == ("failed", "running", "failed")
    assert served_target().version == "base"


def test_the_bootstrap_waits_for_the_library_and_runs_once(small_pdf: bytes, redis_url: str):
    from apps.documents.models import Document
    from apps.training.services.loop import (
        LibraryNotReady,
        loop_bootstrap,
        loop_bootstrap_queue,
    )

    document = support.ingest("ufc.pdf", small_pdf)
    Document.objects.filter(pk=document.pk).update(status=Document.Status.PROCESSING)
    with pytest.raises(LibraryNotReady, match="1 documents are still being ingested"):
        loop_bootstrap()
    assert not LoopRun.objects.exists()
    assert loop_bootstrap_queue() is True  # queued for the gpu worker
    # Take the message back off the real broker: no worker runs here, and a gpu worker
    # started by a later test would otherwise run this bootstrap on that test's data.
    from portal.celery import GPU_QUEUE

    assert support.purge_queue(GPU_QUEUE) == 1
    # Once it has run (here: its row exists), a second start queues nothing.
    LoopRun.objects.create(key="bootstrap", algorithm="sft", status=LoopRun.Status.KEPT)
    assert loop_bootstrap_queue() is False
    Document.objects.filter(pk=document.pk).update(status=Document.Status.READY)
    assert loop_bootstrap().status == LoopRun.Status.KEPT  # the same loop, not a new one
    assert LoopRun.objects.count() == 1


def test_a_loop_key_claims_the_run_and_a_running_loop_blocks_another(settings):
    from apps.training.services.loop import LoopBusy

    first = LoopRun.objects.create(key="nightly-2026-12-01", status=LoopRun.Status.KEPT)
    # A doubled beat or a redelivered message finds the night's loop and trains nothing.
    assert loop_run(key="nightly-2026-12-01") == first
    assert LoopRun.objects.count() == 1
    running = LoopRun.objects.create(key="", status=LoopRun.Status.RUNNING)
    with pytest.raises(LoopBusy, match=f"loop #{running.pk} is still running"):
        loop_run(key="nightly-2026-12-02")
