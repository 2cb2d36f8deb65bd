"""LoRA-SFT: supervised fine-tuning of the policy on (prompt, completion) examples with TRL's
``SFTTrainer``. The data is conversational prompt-completion, so the loss covers only the
completion: the model learns to answer, not to reproduce the retrieved passages.

Training starts from a fresh LoRA on the base model, or continues a parent adapter. The
adapter is published with its manifest by ``save_adapter`` (temporary folder, then rename).
This module also holds the policy loading that DPO and KTO share.

LoRA size: the pilot used r=512, alpha=1024 on a 7B model. The defaults keep its ratio
alpha = 2r (the update scale alpha/r stays 2, so the learning rate carries over) and size r
to the model and the data: r=16 for a 135M-class model trained on hundreds to a few thousand
examples; raise r with the model (64 for 1-3B, 128-512 for 7B) rather than with the data.

    python -m ml.training.sft --config sft.json --data examples.jsonl
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml import adapters
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
from ml.training.data import SFTExample
from ml.training.results import TrainResult

ALGORITHM = "sft"
# The linear layers of a Llama-style block (SmolLM2, Llama, Qwen, Mistral): LoRA on all of
# them trains better than on attention alone at the same rank (QLoRA, Dettmers et al. 2023).
LLAMA_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class SFTConfig:
    base_model: str = field(metadata={"help": "Folder of the base causal LM (with its tokenizer)."})
    adapters_dir: str = field(
        metadata={"help": "Folder of adapter versions; the run publishes adapters_dir/version."}
    )
    parent_adapter: str = field(
        default="",
        metadata={
            "help": "Adapter to continue (a folder, or a version in adapters_dir); empty starts "
            "a fresh LoRA. A parent keeps its own rank and target modules."
        },
    )
    version: str = field(
        default="", metadata={"help": "Name of the new version; empty means sft-<timestamp>."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (see the module docstring)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scale; keep it at 2 * lora_r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    target_modules: tuple[str, ...] = field(
        default=LLAMA_LINEAR, metadata={"help": "Names of the linear layers that get LoRA."}
    )
    learning_rate: float = field(
        default=2e-4, metadata={"help": "Peak AdamW learning rate (usual for LoRA-SFT)."}
    )
    num_train_epochs: float = field(default=3, metadata={"help": "Passes over the examples."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Examples per step."})
    max_length: int = field(
        default=2048,
        metadata={
            "help": "Tokens per example (chat template applied): room for the passages and the "
            "answer. Longer examples lose their end."
        },
    )
    seed: int = field(default=42, metadata={"help": "Seed for the LoRA init and the order."})
    device: str = field(default="auto", metadata={"help": "'auto', 'cpu' or 'cuda[:n]'."})
    data_snapshot: str = field(
        default="", metadata={"help": "Names the training data, recorded in the manifest."}
    )


def main(
    config: SFTConfig, data: Sequence[SFTExample], reporter: Reporter | None = None
) -> TrainResult:
    from datasets import Dataset
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    from ml.training.callbacks import train_reporting

    reporter = reporter or MemoryReporter()
    if not data:
        raise ValueError("no SFT examples to train on")
    adapters_dir = Path(config.adapters_dir)
    version = check_new_version(adapters_dir, config.version or new_version(ALGORITHM))
    parent, parent_version = resolve_parent(config.parent_adapter, adapters_dir)
    check_stop(reporter)
    device = device_name(config.device)

    model, tokenizer = load_policy(config.base_model, parent)
    with scratch_dir() as scratch:
        args = TRLSFTConfig(
            output_dir=scratch,
            learning_rate=config.learning_rate,
            num_train_epochs=config.num_train_epochs,
            per_device_train_batch_size=config.per_device_train_batch_size,
            max_length=config.max_length,
            completion_only_loss=True,
            seed=config.seed,
            logging_steps=1,
            **trl_precision_flags(device),
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list([example.as_trl() for example in data]),
            processing_class=tokenizer,
            peft_config=None if parent else lora_config(config),
        )
        callback = train_reporting(trainer, reporter)

    metrics = {
        "examples": float(len(data)),
        **callback.first_and_last("loss", "mean_token_accuracy"),
        **callback.last("train_loss"),
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


# Shared by the LoRA jobs (SFT, DPO, KTO).


def check_new_version(adapters_dir: Path, version: str) -> str:
    """Fails before any training if the version is already published."""
    if (adapters_dir / version).exists():
        raise FileExistsError(f"adapter folder already exists: {adapters_dir / version}")
    return version


def resolve_parent(parent_adapter: str, adapters_dir: Path) -> tuple[Path | None, str]:
    """(folder, version) of the adapter to continue, verified against its manifest;
    (None, "base") for a fresh LoRA (an empty name or "base")."""
    if parent_adapter in ("", adapters.BASE):
        return None, adapters.BASE
    folder = Path(parent_adapter)
    if not folder.is_dir() and (adapters_dir / parent_adapter).is_dir():
        folder = adapters_dir / parent_adapter
    if not folder.is_dir():
        raise FileNotFoundError(f"parent adapter not found: {parent_adapter}")
    return folder, adapters.verify(folder).version


def load_policy(base_model: str, parent: Path | None) -> tuple[Any, Any]:
    """(model, tokenizer): the base model in float32, wrapped in the parent adapter (trainable)
    when there is one; a fresh LoRA is added by the trainer from ``lora_config``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ml.models import ensure_pad_token

    if not (Path(base_model) / "config.json").is_file():
        raise FileNotFoundError(f"base model not found (no config.json): {base_model}")
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    ensure_pad_token(tokenizer, model)
    if parent is not None:
        model = PeftModel.from_pretrained(model, str(parent), is_trainable=True)
    return model, tokenizer


def lora_config(config: Any) -> Any:
    """A fresh LoRA from a job config's ``lora_*`` and ``target_modules`` fields."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )


def trained_adapter(trainer: Any) -> Any:
    """The trained peft model holding only its "default" adapter: DPO and KTO add a frozen
    "ref" copy of a parent adapter as their reference, which must not be published."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    for name in list(model.peft_config):
        if name != "default":
            model.delete_adapter(name)
    return model


def scratch_dir() -> Any:
    """The trainer's own output folder: nothing is saved there, and it goes away with the run
    (the published adapter is written by ``save_adapter``)."""
    import tempfile

    return tempfile.TemporaryDirectory(prefix="trl-")


if __name__ == "__main__":
    from ml.training.data import read_sft
    from ml.training.results import cli

    cli(SFTConfig, main, read_sft)
