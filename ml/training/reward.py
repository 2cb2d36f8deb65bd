"""Reward model: a single-score sequence classifier trained on preference pairs with TRL's
``RewardTrainer`` (Bradley-Terry loss on score(chosen) - score(rejected)).

The backbone is a small encoder (all-MiniLM-L6-v2 by default), not the policy: it reads the
prompt flattened to plain text and the answer, ``[CLS] end of prompt [SEP] answer [SEP]``.
The pairs are tokenized here rather than by TRL, which would append an EOS token the BERT
vocabulary does not have. A share of the prompts is held out, and the pairwise accuracy on
them before and after training is the figure that says whether the model learned anything.

The full model (not an adapter) is published as ``out_dir/version`` with the manifest that
adapters have (ml/adapters.py): backbone as base model, data snapshot, config, metrics and a
SHA-256 per file. To continue training an
earlier reward model, name its folder as the backbone.

    python -m ml.training.reward --config reward-config.json --data pairs.jsonl
"""

from __future__ import annotations

import copy
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml import adapters
from ml.training.common import (
    MemoryReporter,
    Reporter,
    check_new_version,
    check_stop,
    config_dict,
    device_name,
    new_version,
    scratch_dir,
    trl_training_args,
)
from ml.training.data import PreferencePair, prompt_text
from ml.training.results import TrainResult

ALGORITHM = "reward"


@dataclass(frozen=True)
class RewardConfig:
    out_dir: str = field(
        metadata={"help": "Folder of reward model versions; the run publishes out_dir/version."}
    )
    backbone: str = field(
        default="",
        metadata={
            "help": "Encoder folder to start from; empty means the packaged all-MiniLM-L6-v2. "
            "An earlier reward model folder continues its training."
        },
    )
    version: str = field(
        default="", metadata={"help": "Name of the new version; empty means reward-<timestamp>."}
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "Peak AdamW learning rate."})
    num_train_epochs: float = field(
        default=10, metadata={"help": "Passes over the training pairs (the pilot used 10)."}
    )
    per_device_train_batch_size: int = field(
        default=8, metadata={"help": "Pairs per step (each gives a chosen and a rejected row)."}
    )
    max_length: int = field(
        default=512,
        metadata={
            "help": "Tokens per (prompt, answer) row, at most the encoder's 512. The answer "
            "keeps its start, the prompt its end (the question)."
        },
    )
    eval_fraction: float = field(
        default=0.2,
        metadata={
            "help": "Share of pairs held out (by prompt) to measure pairwise accuracy; 0 for none."
        },
    )
    seed: int = field(default=42, metadata={"help": "Seed for the split, the head and the order."})
    device: str = field(default="auto", metadata={"help": "'auto', 'cpu' or 'cuda[:n]'."})
    data_snapshot: str = field(
        default="", metadata={"help": "Names the training data, recorded in the manifest."}
    )


def main(
    config: RewardConfig, data: Sequence[PreferencePair], reporter: Reporter | None = None
) -> TrainResult:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed
    from trl import RewardConfig as TRLRewardConfig
    from trl import RewardTrainer

    from ml.training.callbacks import train_reporting

    reporter = reporter or MemoryReporter()
    if not data:
        raise ValueError("no preference pairs to train on")
    backbone = _backbone(config.backbone)
    out_dir = Path(config.out_dir)
    version = check_new_version(out_dir, config.version or new_version(ALGORITHM))
    check_stop(reporter)
    device = device_name(config.device)

    train_pairs, heldout = split_heldout(data, config.eval_fraction, config.seed)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    encode = pair_encoder(tokenizer, config.max_length)
    set_seed(config.seed)  # the score head is initialised randomly
    model = AutoModelForSequenceClassification.from_pretrained(
        backbone, num_labels=1, dtype=torch.float32
    )
    metrics: dict[str, float] = {
        "train_pairs": float(len(train_pairs)),
        "heldout_pairs": float(len(heldout)),
    }
    if heldout:
        model.to(device)
        metrics["heldout_accuracy_before"] = _pairwise_accuracy(model, tokenizer, encode, heldout)

    # TRL 1.16 reads pre-tokenized pairs from `chosen_ids`/`rejected_ids` (the older
    # `chosen_input_ids` names are renamed with a deprecation warning).
    rows = [
        {
            "chosen_ids": encode(prompt_text(p.prompt), p.chosen),
            "rejected_ids": encode(prompt_text(p.prompt), p.rejected),
        }
        for p in train_pairs
    ]
    with scratch_dir() as scratch:
        trainer = RewardTrainer(
            model=model,
            args=trl_training_args(TRLRewardConfig, config, output_dir=scratch, device=device),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
        )
        callback = train_reporting(trainer, reporter)

    model = trainer.model
    if heldout:
        metrics["heldout_accuracy_after"] = _pairwise_accuracy(model, tokenizer, encode, heldout)
    metrics.update(callback.first_and_last("loss", "accuracy", "margin"))
    check_stop(reporter)
    path = _publish(
        model,
        tokenizer,
        out_dir=out_dir,
        version=version,
        base_model=str(backbone),
        # Training continued from an earlier reward model: its version, else base.
        parent=_record_version(backbone) or adapters.BASE,
        algorithm=ALGORITHM,
        data_snapshot=config.data_snapshot,
        config=config_dict(config),
        metrics=metrics,
    )
    return TrainResult(ALGORITHM, version, path, metrics, trainer.state.global_step)


def pair_encoder(tokenizer: Any, max_length: int) -> Callable[[str, str], list[int]]:
    """Encodes (prompt, response) as ``[CLS] prompt [SEP] response [SEP]`` in at most
    ``max_length`` tokens. What is judged is the answer, so it keeps its start (at least half
    the room when both are long); the prompt keeps its end, where the question is, and loses
    the system text and early passages first."""
    # The fast tokenizer's own encodings truncate from either side and add the special tokens
    # of any backbone; its saved padding and truncation settings are switched off on a copy
    # (made once: copying costs tens of milliseconds).
    backend = copy.copy(tokenizer.backend_tokenizer)
    backend.no_truncation()
    backend.no_padding()
    room = max_length - backend.num_special_tokens_to_add(is_pair=True)

    def encode(prompt: str, response: str) -> list[int]:
        first = backend.encode(prompt, add_special_tokens=False)
        second = backend.encode(response, add_special_tokens=False)
        if len(first.ids) + len(second.ids) > room:
            keep = min(len(second.ids), max(room - len(first.ids), room // 2))
            second.truncate(keep)
            first.truncate(room - keep, direction="left")
        return list(backend.post_process(first, second, add_special_tokens=True).ids)

    return encode


def split_heldout(
    pairs: Sequence[PreferencePair], fraction: float, seed: int
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, held-out), split by prompt so no question is seen in both; at least one prompt
    stays for training."""
    by_prompt: dict[str, list[PreferencePair]] = {}
    for pair in pairs:
        by_prompt.setdefault(prompt_text(pair.prompt), []).append(pair)
    prompts = sorted(by_prompt)
    random.Random(seed).shuffle(prompts)
    wanted = round(len(pairs) * fraction)
    heldout: list[PreferencePair] = []
    train: list[PreferencePair] = []
    for index, prompt in enumerate(prompts):
        last = index == len(prompts) - 1
        if len(heldout) < wanted and not last:
            heldout.extend(by_prompt[prompt])
        else:
            train.extend(by_prompt[prompt])
    return train, heldout


def load_reward_scorer(
    path: str | Path, *, device: str = "auto", batch_size: int = 16
) -> Callable[[list[str], list[str]], list[float]]:
    """A function scoring (prompt text, response) pairs with the reward model at ``path``,
    once its files match its manifest. Prompts are ``prompt_text(messages)``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(path)
    record = read_record(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encode = pair_encoder(tokenizer, int(record.config.get("max_length", 512)))
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
    model.to(device_name(device)).eval()

    def score(prompts: list[str], responses: list[str]) -> list[float]:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        ids = [encode(p, r) for p, r in zip(prompts, responses, strict=True)]
        return _scores(model, tokenizer, ids, batch_size)

    return score


def read_record(folder: Path) -> adapters.Manifest:
    """The manifest of a published reward model, once every file matches it."""
    return adapters.verify(folder, required=("config.json",))


def _backbone(requested: str) -> Path:
    if requested:
        backbone = Path(requested)
    else:
        from ml.embeddings import default_model_path

        backbone = default_model_path()
    if not (backbone / "config.json").is_file():
        raise FileNotFoundError(f"reward model backbone not found (no config.json): {backbone}")
    return backbone


def _record_version(folder: Path) -> str:
    try:
        return adapters.read_manifest(folder).version
    except adapters.AdapterRefused:  # a plain backbone, not one of our reward models
        return ""


def _scores(model: Any, tokenizer: Any, ids: list[list[int]], batch_size: int) -> list[float]:
    import torch

    was_training = model.training
    model.eval()
    scores: list[float] = []
    try:
        with torch.no_grad():
            for start in range(0, len(ids), batch_size):
                batch = ids[start : start + batch_size]
                width = max(len(row) for row in batch)
                input_ids = torch.tensor(
                    [row + [tokenizer.pad_token_id] * (width - len(row)) for row in batch]
                )
                mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in batch])
                logits = model(
                    input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device)
                ).logits
                scores.extend(logits[:, 0].float().cpu().tolist())
    finally:
        model.train(was_training)
    return scores


def _pairwise_accuracy(
    model: Any,
    tokenizer: Any,
    encode: Callable[[str, str], list[int]],
    pairs: Sequence[PreferencePair],
) -> float:
    """Share of pairs where score(chosen) > score(rejected)."""
    chosen = [encode(prompt_text(p.prompt), p.chosen) for p in pairs]
    rejected = [encode(prompt_text(p.prompt), p.rejected) for p in pairs]
    scores = _scores(model, tokenizer, chosen + rejected, batch_size=16)
    wins = sum(c > r for c, r in zip(scores[: len(pairs)], scores[len(pairs) :], strict=True))
    return wins / len(pairs)


def _publish(model: Any, tokenizer: Any, *, out_dir: Path, version: str, **fields: Any) -> Path:
    """Saves under a temporary name, writes the manifest (the adapters' format), and renames
    into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=out_dir))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        adapters.write_manifest(staging, version=version, **fields)
        return adapters.publish(staging, out_dir / version)
    except BaseException:
        adapters.discard(staging)
        raise


if __name__ == "__main__":
    from ml.training.data import read_pairs
    from ml.training.results import cli

    cli(RewardConfig, main, read_pairs)
