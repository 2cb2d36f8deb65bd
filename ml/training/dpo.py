"""DPO: the policy learns directly from preference pairs with TRL's ``DPOTrainer``, an
alternative to reward model + PPO that needs neither generation nor a reward model.

The policy is a LoRA. For a fresh LoRA the reference model is the base model (TRL disables
the adapter to compute it); when a parent adapter is continued, TRL copies it into a frozen
"ref" adapter, so the reference is the parent. Only the trained adapter is published.

Learning rate: TRL's default of 1e-6 is meant for full fine-tuning; a low-rank update needs
a larger rate, and 5e-6 with beta=0.1 is the usual choice for LoRA-DPO. Much larger rates
over-optimise: the margin keeps growing while the log-probabilities of both answers fall,
and the policy's fluency with them.

    python -m ml.training.dpo --config dpo.json --data pairs.jsonl
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ml.training.common import PolicyTrainConfig, Reporter, train_lora_policy
from ml.training.data import PreferencePair
from ml.training.results import TrainResult

ALGORITHM = "dpo"
# What TRL logs that says how the preference training went.
REPORTED = (
    "rewards/accuracies",
    "rewards/margins",
    "rewards/chosen",
    "rewards/rejected",
    "logps/chosen",
    "logps/rejected",
)


@dataclass(frozen=True)
class DPOConfig(PolicyTrainConfig):
    learning_rate: float = field(
        default=5e-6, metadata={"help": "Peak AdamW learning rate (see the module docstring)."}
    )
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Pairs per step."})
    beta: float = field(
        default=0.1,
        metadata={"help": "Strength of the pull towards the reference; higher stays closer."},
    )


def main(
    config: DPOConfig, data: Sequence[PreferencePair], reporter: Reporter | None = None
) -> TrainResult:
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

    if not data:
        raise ValueError("no preference pairs to train on")
    return train_lora_policy(
        config,
        reporter,
        algorithm=ALGORITHM,
        trainer_type=DPOTrainer,
        args_type=TRLDPOConfig,
        rows=[pair.as_trl() for pair in data],
        metrics=lambda run: {
            "pairs": float(len(data)),
            **run.first_and_last("loss"),
            **run.last(*REPORTED, "train_loss"),
        },
        beta=config.beta,
    )


if __name__ == "__main__":
    from ml.training.data import read_pairs
    from ml.training.results import cli

    cli(DPOConfig, main, read_pairs)
