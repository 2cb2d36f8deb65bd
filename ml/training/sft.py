"""LoRA-SFT: supervised fine-tuning of the policy on (prompt, completion) examples with TRL's
``SFTTrainer``. The data is conversational prompt-completion, so the loss covers only the
completion: the model learns to answer, not to reproduce the retrieved passages.

Training starts from a fresh LoRA on the base model, or continues a parent adapter; the run
itself (loading, reporting, publishing the adapter with its manifest) is
``common.train_lora_policy``, and the LoRA size is discussed at ``PolicyTrainConfig``.

    python -m ml.training.sft --config sft.json --data examples.jsonl
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ml.training.common import PolicyTrainConfig, Reporter, train_lora_policy
from ml.training.data import SFTExample
from ml.training.results import TrainResult

ALGORITHM = "sft"


@dataclass(frozen=True)
class SFTConfig(PolicyTrainConfig):
    learning_rate: float = field(
        default=2e-4, metadata={"help": "Peak AdamW learning rate (usual for LoRA-SFT)."}
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
        completion_only_loss=True,
    )


if __name__ == "__main__":
    from ml.training.data import read_sft
    from ml.training.results import cli

    cli(SFTConfig, main, read_sft)
