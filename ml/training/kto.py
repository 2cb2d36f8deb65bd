"""KTO: the policy learns from answers marked desirable or undesirable with TRL's
``KTOTrainer``. KTO needs no pairs; here each preference pair gives one desirable example
(the chosen answer) and one undesirable example (the rejected one) for the same prompt, so
the same data trains DPO and KTO and the two can be compared.

The policy is a LoRA with the same reference rule as DPO: the base model for a fresh LoRA,
the parent adapter (copied by TRL into a frozen "ref" adapter) when one is continued.

KTO estimates its KL term from mismatched prompt/answer pairs inside each batch, so a batch
holds at least two examples and the examples keep a fixed order (TRL's "sequential"
sampling): the pairs are shuffled once with the seed, and each contributes its desirable and
undesirable example next to each other. Learning rate as for DPO (5e-6 for a LoRA; TRL's
1e-6 default is for full fine-tuning). Both classes are equally frequent, so the desirable
and undesirable weights stay at 1.

    python -m ml.training.kto --config kto.json --data pairs.jsonl
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ml.training.common import PolicyTrainConfig, Reporter, train_lora_policy
from ml.training.data import PreferencePair
from ml.training.results import TrainResult

ALGORITHM = "kto"
REPORTED = (
    "kl",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
)


@dataclass(frozen=True)
class KTOConfig(PolicyTrainConfig):
    learning_rate: float = field(
        default=5e-6, metadata={"help": "Peak AdamW learning rate (see the module docstring)."}
    )
    per_device_train_batch_size: int = field(
        default=4, metadata={"help": "Examples per step; at least 2 (the KL estimate needs it)."}
    )
    beta: float = field(
        default=0.1,
        metadata={"help": "Strength of the pull towards the reference; higher stays closer."},
    )
    desirable_weight: float = field(
        default=1.0, metadata={"help": "Loss weight of desirable (chosen) examples."}
    )
    undesirable_weight: float = field(
        default=1.0, metadata={"help": "Loss weight of undesirable (rejected) examples."}
    )


def unpaired(pairs: Sequence[PreferencePair], seed: int) -> list[dict[str, Any]]:
    """KTO rows in TRL's unpaired conversational format: per pair, the chosen answer labelled
    desirable next to the rejected one labelled undesirable, pairs in a seeded order."""
    order = list(pairs)
    random.Random(seed).shuffle(order)
    rows = []
    for pair in order:
        for answer, desirable in ((pair.chosen, True), (pair.rejected, False)):
            rows.append(
                {
                    "prompt": list(pair.prompt),
                    "completion": [{"role": "assistant", "content": answer}],
                    "label": desirable,
                }
            )
    return rows


def main(
    config: KTOConfig, data: Sequence[PreferencePair], reporter: Reporter | None = None
) -> TrainResult:
    from trl import KTOConfig as TRLKTOConfig
    from trl import KTOTrainer

    if not data:
        raise ValueError("no preference pairs to train on")
    if config.per_device_train_batch_size < 2:
        raise ValueError("KTO needs per_device_train_batch_size >= 2 to estimate its KL term")
    return train_lora_policy(
        config,
        reporter,
        algorithm=ALGORITHM,
        trainer_type=KTOTrainer,
        args_type=TRLKTOConfig,
        rows=unpaired(data, config.seed),
        metrics=lambda run: {
            "examples": float(2 * len(data)),
            **run.first_and_last("loss"),
            **run.last(*REPORTED, "train_loss"),
        },
        beta=config.beta,
        desirable_weight=config.desirable_weight,
        undesirable_weight=config.undesirable_weight,
    )


if __name__ == "__main__":
    from ml.training.data import read_pairs
    from ml.training.results import cli

    cli(KTOConfig, main, read_pairs)
