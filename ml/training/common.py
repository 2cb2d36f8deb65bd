"""What every training job shares: progress reporting and cancellation, device flags and TRL
arguments, and for the LoRA policy jobs (SFT, DPO, KTO) their common config, loading the
policy, and the run itself: train with reporting, then publish the adapter folder with its
manifest."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ml import adapters
from ml.training.results import TrainResult

if TYPE_CHECKING:
    from ml.training.callbacks import ReporterCallback

# The linear layers of a Llama-style block (SmolLM2, Llama, Qwen, Mistral): LoRA on all of
# them trains better than on attention alone at the same rank (QLoRA, Dettmers et al. 2023).
LLAMA_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class Cancelled(RuntimeError):
    """The run was cancelled from outside; nothing it produced is kept."""


class TrainingDiverged(RuntimeError):
    """A guard stopped the run (KL or response length ran away, loss is not finite)."""


class Reporter(Protocol):
    """Where a job sends its metric series and progress, and learns it should stop."""

    def log(self, step: int, metrics: dict[str, float]) -> None: ...

    def progress(self, done: int, total: int) -> None: ...

    def should_stop(self) -> bool: ...


@dataclass
class MemoryReporter:
    """Keeps everything in memory (tests, the command line); prints when ``echo``."""

    echo: bool = False
    series: list[dict[str, float]] = field(default_factory=list)
    done: int = 0
    total: int = 0
    stop: bool = False

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": float(step), **{k: float(v) for k, v in metrics.items()}}
        self.series.append(row)
        if self.echo:
            print(json.dumps(row), flush=True)

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def should_stop(self) -> bool:
        return self.stop


def check_stop(reporter: Reporter) -> None:
    if reporter.should_stop():
        raise Cancelled("the run was cancelled")


def device_name(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def trl_precision_flags(device: str) -> dict[str, Any]:
    """TRL configs default to bf16 and gradient checkpointing, which make CPU training
    about 20x slower; on a GPU bf16 is right when it is supported."""
    import torch

    on_gpu = device.startswith("cuda")
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    return {
        "bf16": bf16,
        "fp16": False,
        # The new name of gradient_checkpointing (deprecated in transformers 5, and TRL
        # still defaults the old name to True): set explicitly, it wins.
        "activation_checkpointing": False,
        "use_cpu": not on_gpu,
        "report_to": [],
        "save_strategy": "no",
        "disable_tqdm": True,
    }


def trl_training_args(
    args_type: type[Any], config: Any, *, output_dir: str, device: str, **job_args: Any
) -> Any:
    """A TRL config of ``args_type`` from the settings every job config has (learning rate,
    epochs, batch size, max length, seed), the job's own ``job_args``, and the device flags;
    every step is logged, so the reporter sees the whole series."""
    return args_type(
        output_dir=output_dir,
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        per_device_train_batch_size=config.per_device_train_batch_size,
        max_length=config.max_length,
        seed=config.seed,
        logging_steps=1,
        **job_args,
        **trl_precision_flags(device),
    )


def scratch_dir() -> tempfile.TemporaryDirectory[str]:
    """The trainer's own output folder: nothing is saved there, and it goes away with the run
    (what is published is written by the job)."""
    return tempfile.TemporaryDirectory(prefix="trl-")


def check_new_version(folder: Path, version: str) -> str:
    """Fails before any training if the version is already published in ``folder``."""
    if (folder / version).exists():
        raise FileExistsError(f"version folder already exists: {folder / version}")
    return version


def config_dict(config: Any) -> dict[str, Any]:
    data = asdict(config) if is_dataclass(config) and not isinstance(config, type) else dict(config)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}


def save_adapter(
    model: Any,
    *,
    adapters_dir: Path,
    version: str,
    base_model: str,
    parent: str,
    algorithm: str,
    data_snapshot: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    tokenizer: Any | None = None,
) -> Path:
    """Saves a peft model's adapter under a temporary name with its GGUF LoRA and manifest,
    and renames it into ``adapters_dir/version`` so no half-written adapter is ever visible.
    A failed GGUF conversion fails the save: an adapter is published in both forms or not."""
    adapters_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=adapters_dir))
    try:
        model.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
    except BaseException:
        adapters.discard(staging)
        raise
    return adapters.finish(
        staging,
        adapters_dir=adapters_dir,
        version=version,
        base_model=base_model,
        base_config=model.get_base_model().config.to_dict(),
        parent=parent,
        algorithm=algorithm,
        data_snapshot=data_snapshot,
        config=config,
        metrics=metrics,
    )


def new_version(algorithm: str) -> str:
    return f"{algorithm}-{time.strftime('%Y%m%d-%H%M%S')}"


# The LoRA policy jobs (SFT, DPO, KTO).


@dataclass(frozen=True)
class PolicyTrainConfig:
    """What every LoRA policy job is configured with; a job's config adds its own settings
    and sets its own defaults.

    LoRA size: the pilot used r=512, alpha=1024 on a 7B model. The defaults keep its ratio
    alpha = 2r (the update scale alpha/r stays 2, so the learning rate carries over) and size
    r to the model and the data: r=16 for a 135M-class model trained on hundreds to a few
    thousand examples; raise r with the model (64 for 1-3B, 128-512 for 7B) rather than with
    the data."""

    base_model: str = field(metadata={"help": "Folder of the base causal LM (with its tokenizer)."})
    adapters_dir: str = field(
        metadata={"help": "Folder of adapter versions; the run publishes adapters_dir/version."}
    )
    parent_adapter: str = field(
        default="",
        metadata={
            "help": "Adapter to continue (a folder, or a version in adapters_dir); empty starts "
            "a fresh LoRA. A parent keeps its own rank and target modules; DPO and KTO also "
            "use it as the reference (else the base model)."
        },
    )
    version: str = field(
        default="",
        metadata={"help": "Name of the new version; empty means <algorithm>-<timestamp>."},
    )
    lora_r: int = field(
        default=16, metadata={"help": "LoRA rank of a fresh adapter (see PolicyTrainConfig)."}
    )
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scale; keep it at 2 * lora_r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    target_modules: tuple[str, ...] = field(
        default=LLAMA_LINEAR, metadata={"help": "Names of the linear layers that get LoRA."}
    )
    learning_rate: float = field(
        default=2e-4, metadata={"help": "Peak AdamW learning rate; each job sets its own."}
    )
    num_train_epochs: float = field(default=3, metadata={"help": "Passes over the examples."})
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Examples per step."})
    max_length: int = field(
        default=2048,
        metadata={
            "help": "Tokens per prompt + answer (chat template applied): room for the passages "
            "and the answer. Longer examples lose their end."
        },
    )
    seed: int = field(default=42, metadata={"help": "Seed for the LoRA init and the order."})
    device: str = field(default="auto", metadata={"help": "'auto', 'cpu' or 'cuda[:n]'."})
    data_snapshot: str = field(
        default="", metadata={"help": "Names the training data, recorded in the manifest."}
    )


def train_lora_policy(
    config: PolicyTrainConfig,
    reporter: Reporter | None,
    *,
    algorithm: str,
    trainer_type: type[Any],
    args_type: type[Any],
    rows: Sequence[dict[str, Any]],
    metrics: Callable[[ReporterCallback], dict[str, float]],
    check: Callable[[dict[str, float]], None] | None = None,
    **job_args: Any,
) -> TrainResult:
    """One run of a LoRA policy job: the new version and the parent are checked, the policy
    is loaded (the parent continued, or a fresh LoRA from the config), ``trainer_type`` trains
    on ``rows`` with an ``args_type`` made by ``trl_training_args`` while ``reporter`` follows,
    and the adapter is published with ``metrics`` (read from the logged series) unless
    ``check`` raises on them (a diverged run publishes nothing)."""
    from datasets import Dataset

    from ml.training.callbacks import train_reporting

    reporter = reporter or MemoryReporter()
    adapters_dir = Path(config.adapters_dir)
    version = check_new_version(adapters_dir, config.version or new_version(algorithm))
    parent, parent_version = resolve_parent(config.parent_adapter, adapters_dir)
    check_stop(reporter)
    device = device_name(config.device)

    model, tokenizer = load_policy(config.base_model, parent)
    with scratch_dir() as scratch:
        args = trl_training_args(args_type, config, output_dir=scratch, device=device, **job_args)
        trainer = trainer_type(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(list(rows)),
            processing_class=tokenizer,
            peft_config=None if parent else lora_config(config),
        )
        callback = train_reporting(trainer, reporter)

    results = metrics(callback)
    if check is not None:
        check(results)
    check_stop(reporter)
    path = save_adapter(
        trained_adapter(trainer),
        adapters_dir=adapters_dir,
        version=version,
        base_model=config.base_model,
        parent=parent_version,
        algorithm=algorithm,
        data_snapshot=config.data_snapshot,
        config=config_dict(config),
        metrics=results,
    )
    return TrainResult(algorithm, version, path, results, trainer.state.global_step)


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
        return PeftModel.from_pretrained(model, str(parent), is_trainable=True), tokenizer
    return model, tokenizer


def lora_config(config: PolicyTrainConfig) -> Any:
    """A fresh LoRA from the config's ``lora_*`` and ``target_modules`` fields."""
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


def make_tiny_llama(out: Path, *, tokenizer_from: Path, seed: int = 0, hidden: int = 64) -> Path:
    """A randomly initialised Llama with ``tokenizer_from``'s tokenizer and chat template:
    seconds to train, used by tests and CI in place of a real model."""
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from ml.models import ensure_pad_token

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    ensure_pad_token(tokenizer, model)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.replace(out)
    return out
