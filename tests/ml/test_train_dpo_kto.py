from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from ml import adapters
from ml.training import dpo, kto
from ml.training.common import Cancelled, MemoryReporter, save_adapter
from ml.training.data import PreferencePair
from tests.ml.training_fixtures import FACTS, fact_prompt, grounded_answer, tiny_run


def pairs() -> list[PreferencePair]:
    return [
        PreferencePair(
            prompt=fact_prompt(subject, value),
            chosen=grounded_answer(subject, value),
            rejected="I enjoy hiking in the mountains.",
        )
        for subject, value in FACTS
    ]


def config(
    job: ModuleType, tiny_model: Path, adapters_dir: Path, version: str, **overrides: object
):
    config_type = dpo.DPOConfig if job is dpo else kto.KTOConfig
    fields: dict = {
        **tiny_run(tiny_model, adapters_dir, version),
        "learning_rate": 1e-3,
        "num_train_epochs": 1,
        # DPO: 4 pairs in 2 steps; KTO: 8 unpaired examples in 2 steps.
        "per_device_train_batch_size": 2 if job is dpo else 4,
    }
    return config_type(**{**fields, **overrides})


JOBS = [pytest.param(dpo, id="dpo"), pytest.param(kto, id="kto")]


@pytest.mark.parametrize("job", JOBS)
def test_a_run_publishes_an_adapter_with_its_metrics(
    job: ModuleType, tiny_model: Path, tmp_path: Path
):
    reporter = MemoryReporter()
    result = job.main(config(job, tiny_model, tmp_path, "v1"), pairs(), reporter)

    assert result.algorithm == job.ALGORITHM and result.steps == 2
    assert reporter.done == reporter.total == 2
    metrics = result.metrics
    assert {"loss_first", "loss_last", "rewards/chosen", "rewards/rejected"} <= set(metrics)
    if job is dpo:
        assert 0.0 <= metrics["rewards/accuracies"] <= 1.0 and "rewards/margins" in metrics
    else:
        assert "kl" in metrics and metrics["examples"] == 8

    manifest = adapters.verify(result.path)
    assert result.path == tmp_path / "v1" and sorted(p.name for p in tmp_path.iterdir()) == ["v1"]
    assert manifest.algorithm == job.ALGORITHM and manifest.parent == adapters.BASE
    assert manifest.data_snapshot == "facts-4" and manifest.metrics == metrics
    assert manifest.config["beta"] == 0.1


def save_parent(tiny_model: Path, adapters_dir: Path, version: str) -> Path:
    """An adapter that already moved the policy away from the base model (random LoRA
    weights on both sides), published as an earlier run would."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), lora)
    return save_adapter(
        model,
        adapters_dir=adapters_dir,
        version=version,
        base_model=str(tiny_model),
        parent=adapters.BASE,
        algorithm="sft",
        data_snapshot="",
        config={},
        metrics={},
    )


@pytest.mark.parametrize("job", JOBS)
def test_a_parent_adapter_is_continued_and_is_the_reference(
    job: ModuleType, tiny_model: Path, tmp_path: Path
):
    save_parent(tiny_model, tmp_path, "sft-1")
    child = job.main(
        config(job, tiny_model, tmp_path, "v2", parent_adapter="sft-1", num_train_epochs=0.5),
        pairs(),
    )
    assert child.steps == 1
    # At the first step the policy is the parent; were the reference the base model, the
    # implicit rewards would already differ from zero.
    assert abs(child.metrics["rewards/chosen"]) < 1e-4
    assert abs(child.metrics["rewards/rejected"]) < 1e-4
    manifest = adapters.verify(child.path)
    assert manifest.parent == "sft-1" and manifest.algorithm == job.ALGORITHM
    assert json.loads((child.path / "adapter_config.json").read_text())["r"] == 4
    # TRL's frozen "ref" copy of the parent is the reference only, never published.
    assert not (child.path / "ref").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft-1", "v2"]


@pytest.mark.parametrize("job", JOBS)
def test_a_cancelled_run_writes_nothing(job: ModuleType, tiny_model: Path, tmp_path: Path):
    class StopAfterOneStep(MemoryReporter):
        def should_stop(self) -> bool:
            return self.done >= 1

    reporter = StopAfterOneStep()
    with pytest.raises(Cancelled):
        job.main(config(job, tiny_model, tmp_path, "v1"), pairs(), reporter)
    assert reporter.done == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("job", JOBS)
def test_failures_are_clear_and_write_nothing(job: ModuleType, tiny_model: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="no preference pairs to train on"):
        job.main(config(job, tiny_model, tmp_path, "v1"), [])
    with pytest.raises(FileNotFoundError, match="base model not found"):
        job.main(config(job, tmp_path / "no-model", tmp_path, "v1"), pairs())
    assert list(tmp_path.iterdir()) == []


def test_kto_turns_each_pair_into_a_desirable_and_an_undesirable_example():
    rows = kto.unpaired(pairs(), seed=0)
    assert len(rows) == 8
    assert [row["label"] for row in rows] == [True, False] * 4
    for desirable, undesirable in zip(rows[::2], rows[1::2], strict=True):
        assert desirable["prompt"] == undesirable["prompt"]
        assert desirable["completion"][0]["content"].endswith("[1].")
        assert undesirable["completion"][0]["content"] == "I enjoy hiking in the mountains."
    with pytest.raises(ValueError, match="batch_size >= 2"):
        kto.main(
            kto.KTOConfig(base_model="x", adapters_dir="y", per_device_train_batch_size=1), pairs()
        )
