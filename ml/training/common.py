"""What every training job shares: progress reporting and cancellation, device flags,
loading a LoRA policy, and writing the adapter folder with its manifest."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Protocol

from ml import adapters


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


def config_dict(config: Any) -> dict[str, Any]:
    data = asdict(config) if is_dataclass(config) else dict(config)
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
    """Saves a peft model's adapter under a temporary name, writes its manifest, and renames
    it into ``adapters_dir/version`` so no half-written adapter is ever visible."""
    adapters_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=adapters_dir))
    try:
        model.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        adapters.write_manifest(
            staging,
            version=version,
            base_model=base_model,
            parent=parent,
            algorithm=algorithm,
            data_snapshot=data_snapshot,
            config=config,
            metrics=metrics,
        )
        return adapters.publish(staging, adapters_dir / version)
    except BaseException:
        adapters.discard(staging)
        raise


def new_version(algorithm: str) -> str:
    return f"{algorithm}-{time.strftime('%Y%m%d-%H%M%S')}"


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
