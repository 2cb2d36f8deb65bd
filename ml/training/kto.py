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
from pathlib import Path
from typing import Any

from ml.training.common import (
    MemoryReporter,
    Reporter,
    check_stop,
    config_dict,
    device_name,
    new_version,
    save_adapter,
    trl_precision_flags,
)
from ml.training.data import PreferencePair
from ml.training.results import TrainResult
from ml.training.sft import LLAMA_LINEAR

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
class KTOConfig:
    base_model: str = field(metadata={"help": "Folder of the base causal LM (with its tokenizer)."})
    adapters_dir: str = field(
        metadata={"help": "Folder of adapter versions; the run publishes adapters_dir/version."}
    )
    parent_adapter: str = field(
        default="",
        metadata={
            "help": "Adapter to continue and to use as the reference (a folder, or a version in "
            "adapters_dir); empty starts a fresh LoRA against the base model."
        },
    )
    version: str = field(
        default="", metadata={"help": "Name of the new version; empty means kto-<timestamp>."}
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
    learning_rate: float = field(
        default=5e-6, metadata={"help": "Peak AdamW learning rate (see the module docstring)."}
    )
    num_train_epochs: float = field(default=3, metadata={"help": "Passes over the examples."})
    per_device_train_batch_size: int = field(
        default=4, metadata={"help": "Examples per step; at least 2 (the KL estimate needs it)."}
    )
    max_length: int = field(
        default=2048,
        metadata={
            "help": "Tokens per prompt + answer (chat template applied); longer lose their end."
        },
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank of a fresh adapter."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scale; keep it at 2 * lora_r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    target_modules: tuple[str, ...] = field(
        default=LLAMA_LINEAR, metadata={"help": "Names of the linear layers that get LoRA."}
    )
    seed: int = field(default=42, metadata={"help": "Seed for the LoRA init and the order."})
    device: str = field(default="auto", metadata={"help": "'auto', 'cpu' or 'cuda[:n]'."})
    data_snapshot: str = field(
        default="", metadata={"help": "Names the training data, recorded in the manifest."}
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
    from datasets import Dataset
    from trl import KTOConfig as TRLKTOConfig
    from trl import KTOTrainer

    from ml.training.callbacks import train_reporting
    from ml.training.sft import (
        check_new_version,
        load_policy,
        lora_config,
        resolve_parent,
        scratch_dir,
        trained_adapter,
    )

    reporter = reporter or MemoryReporter()
    if not data:
        raise ValueError("no preference pairs to train on")
    if config.per_device_train_batch_size < 2:
        raise ValueError("KTO needs per_device_train_batch_size >= 2 to estimate its KL term")
    adapters_dir = Path(config.adapters_dir)
    version = check_new_version(adapters_dir, config.version or new_version(ALGORITHM))
    parent, parent_version = resolve_parent(config.parent_adapter, adapters_dir)
    check_stop(reporter)
    device = device_name(config.device)

    model, tokenizer = load_policy(config.base_model, parent)
    with scratch_dir() as scratch:
        args = TRLKTOConfig(
            output_dir=scratch,
            beta=config.beta,
            desirable_weight=config.desirable_weight,
            undesirable_weight=config.undesirable_weight,
            learning_rate=config.learning_rate,
            num_train_epochs=config.num_train_epochs,
            per_device_train_batch_size=config.per_device_train_batch_size,
            max_length=config.max_length,
            seed=config.seed,
            logging_steps=1,
            **trl_precision_flags(device),
        )
        trainer = KTOTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(unpaired(data, config.seed)),
            processing_class=tokenizer,
            peft_config=None if parent else lora_config(config),
        )
        callback = train_reporting(trainer, reporter)

    metrics = {
        "examples": float(2 * len(data)),
        **callback.first_and_last("loss"),
        **callback.last(*REPORTED, "train_loss"),
    }
    check_stop(reporter)
    path = save_adapter(
        trained_adapter(trainer),
        adapters_dir=adapters_dir,
        version=version,
        base_model=config.base_model,
        parent=parent_version,
        algorithm=ALGORITHM,
        data_snapshot=config.data_snapshot,
        config=config_dict(config),
        metrics=metrics,
    )
    return TrainResult(ALGORITHM, version, path, metrics, trainer.state.global_step)


if __name__ == "__main__":
    from ml.training.data import read_pairs
    from ml.training.results import cli

    cli(KTOConfig, main, read_pairs)
