from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml import adapters
from ml.training.common import MemoryReporter
from ml.training.data import SFTExample
from ml.training.sft import SFTConfig, main
from tests.ml.training_fixtures import FACTS, fact_prompt, grounded_answer, tiny_run


def examples() -> list[SFTExample]:
    return [
        SFTExample(prompt=fact_prompt(subject, value), completion=grounded_answer(subject, value))
        for subject, value in FACTS
    ]


def config(tiny_model: Path, adapters_dir: Path, version: str, **overrides: object) -> SFTConfig:
    fields: dict = {
        **tiny_run(tiny_model, adapters_dir, version),
        "learning_rate": 1e-2,
        "num_train_epochs": 4,
        "per_device_train_batch_size": 2,
    }
    return SFTConfig(**{**fields, **overrides})


def test_sft_lowers_the_loss_and_publishes_a_verified_adapter(tiny_model: Path, tmp_path: Path):
    reporter = MemoryReporter()
    result = main(config(tiny_model, tmp_path, "sft-1"), examples(), reporter)

    assert result.algorithm == "sft" and result.steps == 8
    # A random 2-layer model with 64-wide hidden states under LoRA cannot sharpen its output
    # much (its logits stay within about a nat of uniform): any steady drop shows learning.
    assert result.metrics["loss_last"] < result.metrics["loss_first"] - 0.2
    assert "train_loss" in result.metrics and "mean_token_accuracy_last" in result.metrics
    assert reporter.done == reporter.total == 8
    assert [row["step"] for row in reporter.series if "loss" in row] == list(range(1, 9))

    manifest = adapters.verify(result.path)
    assert result.path == tmp_path / "sft-1"
    assert manifest.algorithm == "sft" and manifest.parent == adapters.BASE
    assert manifest.base_model == str(tiny_model) and manifest.data_snapshot == "facts-4"
    assert manifest.config["lora_r"] == 8 and manifest.metrics == result.metrics
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft-1"]


def test_sft_continues_a_parent_adapter(tiny_model: Path, tmp_path: Path):
    parent = main(config(tiny_model, tmp_path, "sft-1", num_train_epochs=1), examples())
    # The child keeps the parent's rank, whatever its own config says, and starts where the
    # parent ended, not from the base model.
    child = main(
        config(tiny_model, tmp_path, "sft-2", parent_adapter="sft-1", lora_r=4, num_train_epochs=1),
        examples(),
    )
    manifest = adapters.verify(child.path)
    assert manifest.parent == "sft-1" and manifest.algorithm == "sft"
    adapter_config = json.loads((child.path / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8
    assert child.metrics["loss_first"] < parent.metrics["loss_first"]


def test_failures_write_nothing(tiny_model: Path, tmp_path: Path):
    with pytest.raises(ValueError, match="no SFT examples"):
        main(config(tiny_model, tmp_path, "sft-1"), [])
    with pytest.raises(FileNotFoundError, match="base model not found"):
        main(config(tmp_path / "no-model", tmp_path, "sft-1"), examples())
    with pytest.raises(FileNotFoundError, match="parent adapter not found"):
        main(config(tiny_model, tmp_path, "sft-1", parent_adapter="sft-0"), examples())
    assert list(tmp_path.iterdir()) == []


def test_a_diverging_run_publishes_nothing(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from ml.training import sft
    from ml.training.sft import TrainingDiverged, check_converged

    # The tiny model's loss barely moves at any learning rate, so the run is made to look
    # diverged: the check runs after training and before anything is published.
    def diverged(metrics: dict[str, float]) -> None:
        check_converged({**metrics, "loss_last": 3 * metrics["loss_first"]})

    monkeypatch.setattr(sft, "check_converged", diverged)
    with pytest.raises(TrainingDiverged, match="diverged"):
        main(config(tiny_model, tmp_path, "sft-hot", num_train_epochs=1), examples())
    assert list(tmp_path.iterdir()) == []  # no adapter, not even a half-written one
    with pytest.raises(TrainingDiverged, match=r"rose from 1\.000 to 2\.000"):
        check_converged({"loss_first": 1.0, "loss_last": 2.0})
    with pytest.raises(TrainingDiverged, match="became nan"):
        check_converged({"loss_first": 1.0, "loss_last": float("nan")})
    check_converged({"loss_first": 2.0, "loss_last": 1.0})
