"""Training runs in-process on the tiny model: what a success registers, and that a
failed, diverged or cancelled run, and a run asked to start twice, leave the served
adapter as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.adapters.models import AdapterVersion
from apps.adapters.selectors import served_target
from apps.adapters.services import adapter_promote
from apps.training.models import TrainingRun
from apps.training.services.data import preferences_build
from apps.training.services.runs import InvalidRun, run_cancel, run_create, run_execute
from tests.apps.training.conftest import feedback_history

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(300)]


@pytest.fixture
def pairs(tiny_generator: Path) -> None:
    feedback_history()
    preferences_build(min_margin=1.0)


def _adapter_folders(settings) -> list[str]:
    folder = Path(settings.ADAPTERS_DIR)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_dpo_run_registers_its_adapter_and_serves_nothing(pairs: None, settings):
    run = run_create(algorithm="dpo", enqueue=False)
    assert (run.status, run.parent_version, run.config["lora_r"]) == ("queued", "base", 4)
    done = run_execute(run_id=run.pk)
    assert done.status == TrainingRun.Status.SUCCEEDED, done.error
    adapter = AdapterVersion.objects.get(version=done.version)
    assert run.snapshot is not None
    assert (adapter.algorithm, adapter.manifest["data_snapshot"]) == ("dpo", run.snapshot.label)
    assert done.series.exists() and done.progress_done == done.progress_total > 0
    assert served_target().version == "base"
    # Running the same run again (a redelivered message) trains nothing.
    again = run_execute(run_id=run.pk)
    assert again.version == done.version and AdapterVersion.objects.count() == 1
    assert _adapter_folders(settings) == [done.version]


def test_ppo_trains_against_the_reward_model_from_the_served_adapter(pairs: None, settings):
    reward = run_execute(run_id=run_create(algorithm="reward", enqueue=False).pk)
    assert reward.status == "succeeded", reward.error
    assert "heldout_accuracy_after" in reward.metrics
    sft_parent = run_execute(run_id=run_create(algorithm="dpo", enqueue=False).pk)
    adapter_promote(version=sft_parent.version)
    ppo = run_execute(run_id=run_create(algorithm="ppo", enqueue=False).pk)
    assert ppo.status == "succeeded", ppo.error
    assert ppo.parent_version == sft_parent.version and ppo.reward_run_id == reward.pk
    parent = AdapterVersion.objects.get(version=ppo.version).parent
    assert parent is not None and parent.version == sft_parent.version
    assert [row.step for row in ppo.series.all()] == [1, 2]
    last = ppo.series.last()
    assert last is not None
    assert {"reward_mean", "kl", "entropy", "clip_fraction", "response_length"} <= set(last.values)
    assert served_target().version == sft_parent.version  # still what was served


def test_a_run_stopped_by_a_guard_fails_and_leaves_nothing(pairs: None, settings):
    run_execute(run_id=run_create(algorithm="reward", enqueue=False).pk)
    before = _adapter_folders(settings)
    run = run_execute(
        run_id=run_create(algorithm="ppo", config={"kl_stop": 1e-9}, enqueue=False).pk
    )
    assert run.status == TrainingRun.Status.FAILED
    assert "TrainingDiverged" in run.error and "kl" in run.error.lower()
    assert _adapter_folders(settings) == before and not AdapterVersion.objects.exists()
    assert served_target().version == "base"


def test_a_cancelled_run_never_trains(pairs: None):
    run = run_create(algorithm="dpo", enqueue=False)
    assert run_cancel(run_id=run.pk).status == TrainingRun.Status.CANCELLED
    assert run_execute(run_id=run.pk).status == TrainingRun.Status.CANCELLED
    assert not AdapterVersion.objects.exists()


def test_bad_requests_are_refused_before_anything_runs(tiny_generator: Path):
    with pytest.raises(InvalidRun, match="no preferences snapshot"):
        run_create(algorithm="dpo", enqueue=False)
    preferences_build(min_margin=1.0)  # nothing stored yet: an empty snapshot
    with pytest.raises(InvalidRun, match="empty"):
        run_create(algorithm="dpo", enqueue=False)
    feedback_history()
    preferences_build(min_margin=1.0)
    with pytest.raises(InvalidRun, match="has no setting warp_speed"):
        run_create(algorithm="dpo", config={"warp_speed": 9}, enqueue=False)
    with pytest.raises(InvalidRun, match="set by the portal"):
        run_create(algorithm="dpo", config={"base_model": "/tmp"}, enqueue=False)
    with pytest.raises(InvalidRun, match="reward model"):
        run_create(algorithm="ppo", enqueue=False)
    with pytest.raises(InvalidRun, match="no adapter 'nope'"):
        run_create(algorithm="dpo", parent_version="nope", enqueue=False)
    assert not TrainingRun.objects.exists()


def test_cancelling_a_run_needs_the_change_permission_not_just_staff():
    from tests import support

    run = TrainingRun.objects.create(algorithm="dpo")
    changelist = "admin:training_trainingrun_changelist"
    viewer = support.staff_client("training.view_trainingrun")
    assert "cancel" not in support.admin_actions_offered(viewer, changelist)
    viewer.post("/admin/training/trainingrun/", {"action": "cancel", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.QUEUED  # refused: nothing changed

    operator = support.staff_client("training.view_trainingrun", "training.change_trainingrun")
    assert "cancel" in support.admin_actions_offered(operator, changelist)
    shown = support.admin_action(operator, changelist, "cancel", [run.pk])
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED and "Cancellation asked for 1" in shown
