"""Training data as the jobs read it: preference pairs and SFT examples, in the JSON Lines
shapes TRL expects (conversational: the prompt is the chat the generator saw)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.jsonl import read_records

Message = dict[str, str]


@dataclass(frozen=True)
class PreferencePair:
    """``prompt`` is the exact chat the generator saw (question plus retrieved passages)."""

    prompt: tuple[Message, ...]
    chosen: str
    rejected: str

    def as_trl(self) -> dict[str, Any]:
        return {
            "prompt": list(self.prompt),
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
        }


@dataclass(frozen=True)
class SFTExample:
    prompt: tuple[Message, ...]
    completion: str

    def as_trl(self) -> dict[str, Any]:
        return {
            "prompt": list(self.prompt),
            "completion": [{"role": "assistant", "content": self.completion}],
        }


def prompt_text(prompt: Sequence[Message]) -> str:
    """A chat flattened to plain text, for models without a chat template (the reward model,
    whose tokenizer differs from the policy's)."""
    return "\n\n".join(m["content"] for m in prompt if m.get("content"))


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_pairs(path: Path) -> list[PreferencePair]:
    return read_records(
        path,
        lambda record: PreferencePair(
            prompt=tuple(record["prompt"]),
            chosen=record["chosen"][-1]["content"],
            rejected=record["rejected"][-1]["content"],
        ),
        what="a preference pair",
    )


def read_sft(path: Path) -> list[SFTExample]:
    return read_records(
        path,
        lambda record: SFTExample(
            prompt=tuple(record["prompt"]), completion=record["completion"][-1]["content"]
        ),
        what="an SFT example",
    )
