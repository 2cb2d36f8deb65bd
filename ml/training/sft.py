"""LoRA-SFT: supervised fine-tuning of the policy on (prompt, completion) examples with TRL's
``SFTTrainer``. The data is conversational prompt-completion, so the loss covers only the
completion: the model learns to answer, not to reproduce the retrieved passages.

Training starts from a fresh LoRA on the base model, or continues a parent adapter; the run
itself (loading, reporting, publishing the adapter with its manifest) is
``common.train_lora_policy``, and the LoRA size is discussed at ``PolicyTrainConfig``.

    python -m ml.training.sft --config sft.json --data examples.jsonl
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ml.training.common import PolicyTrainConfig, Reporter, train_lora_policy
from ml.training.data import SFTExample
from ml.training.results import TrainResult

ALGORITHM = "sft"


# A run whose last logged loss is this many times its first has diverged.
DIVERGED_RATIO = 1.5


class TrainingDiverged(ValueError):
    """The loss went up or became NaN: the run publishes no adapter."""


@dataclass(frozen=True)
class SFTConfig(PolicyTrainConfig):
    learning_rate: float = field(
        default=2e-4, metadata={"help": "Peak AdamW learning rate (usual for LoRA-SFT)."}
    )
    num_train_epochs: float = field(
        default=1,
        metadata={
            "help": "Passes over the examples: one pass over a few hundred synthetic pairs "
            "teaches a 135M model the answer form; more mostly costs CPU time."
        },
    )


def check_converged(metrics: dict[str, float]) -> None:
    """Refuses a run whose loss became NaN or ended well above where it started."""
    first, last = metrics.get("loss_first"), metrics.get("loss_last")
    if first is None or last is None:
        return
    if not (math.isfinite(first) and math.isfinite(last)):
        raise TrainingDiverged(f"the training loss became {last}: the run diverged")
    if last > DIVERGED_RATIO * first:
        raise TrainingDiverged(
            f"the training loss rose from {first:.3f} to {last:.3f}: the run diverged "
            "(lower learning_rate)"
        )


def main(
    config: SFTConfig, data: Sequence[SFTExample], reporter: Reporter | None = None
) -> TrainResult:
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    if not data:
        raise ValueError("no SFT examples to train on")
    return train_lora_policy(
        config,
        reporter,
        algorithm=ALGORITHM,
        trainer_type=SFTTrainer,
        args_type=TRLSFTConfig,
        rows=[example.as_trl() for example in data],
        metrics=lambda run: {
            "examples": float(len(data)),
            **run.first_and_last("loss", "mean_token_accuracy"),
            **run.last("train_loss"),
        },
        check=check_converged,
        completion_only_loss=True,
        # Batches of similar lengths: far less padding on CPU, the same examples.
        train_sampling_strategy="group_by_length",
    )


if __name__ == "__main__":
    from ml.training.data import read_sft
    from ml.training.results import cli

    cli(SFTConfig, main, read_sft)
