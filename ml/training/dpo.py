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
from pathlib import Path

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
class DPOConfig:
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
        default="", metadata={"help": "Name of the new version; empty means dpo-<timestamp>."}
    )
    beta: float = field(
        default=0.1,
        metadata={"help": "Strength of the pull towards the reference; higher stays closer."},
    )
    learning_rate: float = field(
        default=5e-6, metadata={"help": "Peak AdamW learning rate (see the module docstring)."}
    )
    num_train_epochs: float = field(default=3, metadata={"help": "Passes over the pairs."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Pairs per step."})
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


def main(
    config: DPOConfig, data: Sequence[PreferencePair], reporter: Reporter | None = None
) -> TrainResult:
    from datasets import Dataset
    from trl import DPOConfig as TRLDPOConfig
    from trl import DPOTrainer

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
    adapters_dir = Path(config.adapters_dir)
    version = check_new_version(adapters_dir, config.version or new_version(ALGORITHM))
    parent, parent_version = resolve_parent(config.parent_adapter, adapters_dir)
    check_stop(reporter)
    device = device_name(config.device)

    model, tokenizer = load_policy(config.base_model, parent)
    with scratch_dir() as scratch:
        args = TRLDPOConfig(
            output_dir=scratch,
            beta=config.beta,
            learning_rate=config.learning_rate,
            num_train_epochs=config.num_train_epochs,
            per_device_train_batch_size=config.per_device_train_batch_size,
            max_length=config.max_length,
            seed=config.seed,
            logging_steps=1,
            **trl_precision_flags(device),
        )
        trainer = DPOTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list([pair.as_trl() for pair in data]),
            processing_class=tokenizer,
            peft_config=None if parent else lora_config(config),
        )
        callback = train_reporting(trainer, reporter)

    metrics = {
        "pairs": float(len(data)),
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

    cli(DPOConfig, main, read_pairs)
