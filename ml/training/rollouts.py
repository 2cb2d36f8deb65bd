"""Where PPO's rollouts are sampled: in torch with ``generate`` (any device), or in llama.cpp
with the current policy's LoRA (CPU; several times faster on small models).

Only the sampled token ids leave the engine. Log-probabilities, values and gradients are
always computed in torch on those ids, as OpenRLHF does with vLLM, so the PPO arithmetic
is the same whichever engine sampled: the first epoch's ratios start at exactly 1. llama.cpp
runs the quantized base weights that the float32 checkpoint was de-quantized from, so its
samples come from (almost) the same policy; PPO's clipping absorbs the small difference.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch


class RolloutEngine(Protocol):
    name: str

    def sample(self, policy: Any, query: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        """Responses to the left-padded ``query`` rows: [batch, longest response], each row
        ended by EOS (when it stopped) and padded after it."""
        ...


class TorchRollouts:
    name = "torch"

    def __init__(self, generation_config: Any) -> None:
        self.generation_config = generation_config

    def sample(self, policy: Any, query: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        sequences = policy.generate(
            input_ids=query, attention_mask=query_mask, generation_config=self.generation_config
        )
        return sequences[:, query.shape[1] :]


class LlamaCppRollouts:
    """Writes the policy's current LoRA as a GGUF LoRA before each batch (milliseconds for
    r=32 on a 135M model), loads it beside the GGUF base and samples each prompt."""

    name = "llamacpp"

    def __init__(
        self,
        gguf_path: Path,
        *,
        max_new_tokens: int,
        temperature: float,
        top_k: int,
        top_p: float,
        eos_id: int,
        pad_id: int,
        seed: int,
        threads: int | None = None,
        context_tokens: int = 4096,
    ) -> None:
        from ml.llamacpp_generator import load_llama

        self.gguf_path = gguf_path
        self.max_new_tokens = max_new_tokens
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.eos_id, self.pad_id = eos_id, pad_id
        self.threads, self.context_tokens = threads, context_tokens
        self._random = random.Random(seed)
        self._folder = tempfile.TemporaryDirectory(prefix="ppo-rollouts-")
        self._batches = 0
        # Fails early, before any training, when the GGUF cannot be loaded.
        self._llama = load_llama(gguf_path, threads=threads, context_tokens=context_tokens)

    def _policy_instance(self, policy: Any) -> Any:
        from ml import gguf_lora
        from ml.llamacpp_generator import load_llama

        self._batches += 1
        lora = gguf_lora.write_from_model(
            policy, Path(self._folder.name) / f"policy-{self._batches % 2}.gguf"
        )
        if self._llama is not None:
            self._llama.close()
            self._llama = None
        self._llama = load_llama(
            self.gguf_path,
            lora_path=lora,
            threads=self.threads,
            context_tokens=self.context_tokens,
            seed=self._random.randrange(2**31),
        )
        return self._llama

    def sample(self, policy: Any, query: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        from ml.llamacpp_generator import sample

        llama = self._policy_instance(policy)
        rows: list[list[int]] = []
        for ids, mask in zip(query.tolist(), query_mask.tolist(), strict=True):
            prompt = [token for token, keep in zip(ids, mask, strict=True) if keep]
            llama.set_seed(self._random.randrange(2**31))
            tokens = list(
                sample(
                    llama,
                    prompt,
                    max_new_tokens=self.max_new_tokens,
                    stop_ids=frozenset({self.eos_id}),
                    temperature=self.temperature,
                    top_k=self.top_k,
                    top_p=self.top_p,
                )
            )
            if len(tokens) < self.max_new_tokens:
                tokens.append(self.eos_id)  # it stopped: the EOS is part of the response
            rows.append(tokens)
        return pad_rows(rows, self.pad_id, query.device)

    def close(self) -> None:
        if self._llama is not None:
            self._llama.close()
            self._llama = None
        self._folder.cleanup()


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0) or 1
    padded = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)
    for index, row in enumerate(rows):
        if row:
            padded[index, : len(row)] = torch.tensor(row, dtype=torch.long, device=device)
    return padded
