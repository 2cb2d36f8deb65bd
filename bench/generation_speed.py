"""Generation speed of the two in-process engines on the same RAG prompts, against this
machine's memory bandwidth, and llama.cpp adapter swaps while answers are running.

Prints, for transformers (float32, the HF folder de-quantized from the shipped GGUF) and
llama.cpp (the shipped SmolLM2-135M-Instruct Q4_1 GGUF), each on 2 threads, greedy, 64 new
tokens at most, with the portal's repetition penalty: decode tokens/s (after the first
token) and tokens/s including prefill, and the ratios llama.cpp / transformers (target:
decode >= 8x); the same for the Q8_0 copy the portal serves and the faster Q4_0 one
(ml/gguf_requant.py, GENERATOR_REQUANTIZE). Then the
memory bandwidth measured here, the bytes of weights llama.cpp reads
per decoded token and its decode speed as a share of bandwidth / bytes (target >= 0.4).
Last, adapter swap times on llama.cpp while another thread keeps answering (failed answers:
must be 0).

Plain ml/ code, no Django and no database. The prompts are built the way the portal builds
them (ml.prompting.build_messages), from ../shared/eval/sample-qa.jsonl: each question with
four passages made of the sample set's quotes and reference answers, the first from its own
row. Usage: bench/generation_speed.py [--prompts N] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

REPO = Path(__file__).resolve().parent.parent
SAMPLE_QA = REPO.parent / "shared" / "eval" / "sample-qa.jsonl"
# Not bench/_common: importing it starts Django and the embedded PostgreSQL.
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR") or REPO / "var" / "bench" / "generation")
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ml.generator import GenerationResult, GenerationSettings  # noqa: E402
from ml.prompting import Passage, build_messages  # noqa: E402

if TYPE_CHECKING:
    from transformers import BatchEncoding

THREADS = 2
MAX_NEW_TOKENS = 64
PASSAGES = 4  # the portal's ANSWER_PASSAGES default
SETTINGS = GenerationSettings(max_new_tokens=MAX_NEW_TOKENS)  # greedy, portal penalty
COPY_MIB = 1024

_STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def show(label: str, value: object) -> None:
    print(f"{label:30s} {value}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "BELOW TARGET"


def rag_prompts(count: int) -> list[list[dict[str, str]]]:
    """``count`` answering prompts (one more for the warm-up) from the sample set."""
    with SAMPLE_QA.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    prompts = []
    for index in range(count + 1):
        passages = []
        for number in range(1, PASSAGES + 1):
            # Other rows' text as the other passages; every third passage has a second
            # row's text, so prompt lengths vary as retrieval's do.
            picked = [rows[(index + 5 * (number - 1)) % len(rows)]]
            if (index + number) % 3 == 0:
                picked.append(rows[(index + 5 * (number - 1) + 20) % len(rows)])
            passages.append(
                Passage(
                    number=number,
                    chunk_id=number,
                    document=str(picked[0]["document"]),
                    page=picked[0].get("page"),
                    section=str(picked[0].get("section") or ""),
                    text=" ".join(
                        f"{row.get('quote') or ''} {row['reference_answer']}".strip()
                        for row in picked
                    ),
                )
            )
        prompts.append(build_messages(str(rows[index]["question"]), passages))
    return prompts


@dataclass(frozen=True)
class Run:
    prompt: list[int]
    tokens: list[int]  # the answer's tokens, without the stop token
    stopped: bool  # a stop token ended it (sampling that token cost a step like any other)
    first_s: float  # from the call to the first generated token
    total_s: float

    @property
    def steps(self) -> int:
        return len(self.tokens) + self.stopped


def rates(runs: list[Run]) -> dict[str, float]:
    """Decode tokens/s (the steps after the first over the time after the first) and
    tokens/s including prefill (all steps over the whole call), over all prompts together."""
    return {
        "decode_tokens_per_s": sum(r.steps - 1 for r in runs)
        / sum(r.total_s - r.first_s for r in runs),
        "tokens_per_s_with_prefill": sum(r.steps for r in runs) / sum(r.total_s for r in runs),
        "first_token_ms_mean": 1000 * sum(r.first_s for r in runs) / len(runs),
        "generated_tokens": sum(r.steps for r in runs),
    }


class LlamaEngine:
    def __init__(self, gguf_path: Path) -> None:
        from ml.llamacpp_generator import ChatPrompt, load_llama

        self.llama = load_llama(gguf_path, threads=THREADS)
        self.chat = ChatPrompt(self.llama)

    def prompt(self, messages: list[dict[str, str]]) -> list[int]:
        return self.chat.tokens(self.llama, messages)

    def run(self, prompt: list[int]) -> Run:
        from ml.llamacpp_generator import sample

        # The portal keeps the evaluated prefix the next prompt shares (the system prompt);
        # here every prompt is prefilled whole, as transformers does.
        self.llama.reset()
        tokens: list[int] = []
        started = time.perf_counter()
        first = None
        for token in sample(
            self.llama,
            prompt,
            max_new_tokens=MAX_NEW_TOKENS,
            stop_ids=self.chat.stop_ids,
            temperature=SETTINGS.temperature,
            repetition_penalty=SETTINGS.repetition_penalty,
        ):
            if first is None:
                first = time.perf_counter()
            tokens.append(token)
        finished = time.perf_counter()
        stopped = len(tokens) < MAX_NEW_TOKENS
        return Run(prompt, tokens, stopped, (first or finished) - started, finished - started)


class _TokenClock:
    """A transformers streamer that only notes when each new token arrives."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if self._prompt_seen:
            self.times.append(time.perf_counter())
        self._prompt_seen = True  # the first call hands over the prompt

    def end(self) -> None:
        pass


class TransformersEngine:
    def __init__(self, hf_folder: Path, stop_ids: frozenset[int]) -> None:
        from ml.transformers_generator import TransformersGenerator

        generator = TransformersGenerator(hf_folder, device="cpu")
        self.model, self.tokenizer = generator.model, generator.tokenizer
        self.stop_ids = stop_ids  # the same vocabulary as the GGUF (the prompts are compared)

    def prompt(self, messages: list[dict[str, str]]) -> list[int]:
        # return_dict=True: a BatchEncoding, which the method's return type does not single out.
        encoded = cast(
            "BatchEncoding",
            self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_dict=True
            ),
        )
        return list(encoded["input_ids"])

    def run(self, prompt: list[int]) -> Run:
        import torch

        input_ids = torch.tensor([prompt])
        clock = _TokenClock()
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=MAX_NEW_TOKENS,
                do_sample=False,
                repetition_penalty=SETTINGS.repetition_penalty,
                eos_token_id=sorted(self.stop_ids),
                pad_token_id=self.tokenizer.pad_token_id,
                streamer=clock,
            )
        finished = time.perf_counter()
        new = [int(t) for t in output[0][len(prompt) :]]
        stopped = bool(new) and new[-1] in self.stop_ids
        tokens = new[:-1] if stopped else new
        first = clock.times[0] if clock.times else finished
        return Run(prompt, tokens, stopped, first - started, finished - started)


def copy_bandwidth(mib: int = COPY_MIB, repeats: int = 5) -> dict[str, float]:
    """GB/s of a numpy copy (bytes read + bytes written), best of ``repeats``: one thread
    copying ``mib`` MiB, and two threads each copying its own half at the same time."""
    import numpy as np

    size = mib * 2**20
    source = np.full(size, 1, dtype=np.uint8)
    target = np.full(size, 2, dtype=np.uint8)  # touched, so no page faults are timed
    half = size // 2

    def one() -> float:
        started = time.perf_counter()
        np.copyto(target, source)
        return time.perf_counter() - started

    def two() -> float:
        # numpy lets go of the GIL while copying, so the two copies do run together.
        spans: list[tuple[float, float]] = []
        gate = threading.Barrier(2)

        def copy(part: slice) -> None:
            gate.wait()
            started = time.perf_counter()
            np.copyto(target[part], source[part])
            spans.append((started, time.perf_counter()))

        workers = [
            threading.Thread(target=copy, args=(part,))
            for part in (slice(0, half), slice(half, size))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return max(end for _, end in spans) - min(start for start, _ in spans)

    single = 2 * size / min(one() for _ in range(repeats)) / 1e9
    double = 2 * size / min(two() for _ in range(repeats)) / 1e9
    return {"bandwidth_1_thread_gb_s": single, "bandwidth_2_threads_gb_s": double}


def gguf_bytes(path: Path) -> dict[str, float]:
    """Bytes of weights one decoded token reads, and of KV cache per position of context."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    sizes = {tensor.name: int(tensor.n_bytes) for tensor in reader.tensors}
    embedding = next(t for t in reader.tensors if t.name == "token_embd.weight")
    vocab = int(max(embedding.shape))
    tied = "output.weight" not in sizes
    others = sum(size for name, size in sizes.items() if name != "token_embd.weight")
    # The input lookup reads one row of the embedding; the output projection reads a whole
    # vocab x hidden matrix, which with tied embeddings is the embedding matrix itself.
    per_token = others + sizes["token_embd.weight"] // vocab
    if tied:
        per_token += sizes["token_embd.weight"]

    def field(key: str) -> int:
        return int(reader.fields[key].contents())

    arch = str(reader.fields["general.architecture"].contents())
    head_dim = field(f"{arch}.embedding_length") // field(f"{arch}.attention.head_count")
    kv_per_position = (
        2 * field(f"{arch}.block_count") * field(f"{arch}.attention.head_count_kv") * head_dim * 2
    )  # keys and values, f16 (llama.cpp's default cache type)
    return {
        "file_bytes": path.stat().st_size,
        "weight_bytes_per_token": per_token,
        "embedding_bytes": sizes["token_embd.weight"],
        "tied_embeddings": tied,
        "kv_bytes_per_position": kv_per_position,
    }


class OtherLoad:
    """The share of the machine's CPU time that other processes used since this was made.
    llama.cpp's threads wait for each other at every step, so a busy neighbour on a small
    machine slows it far more than the CPU time it takes."""

    def __init__(self) -> None:
        self._start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float]:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
        except OSError:  # not Linux
            return time.perf_counter(), math.nan, 0.0
        user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields)
        busy = (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter(), busy, usage.ru_utime + usage.ru_stime

    def share(self) -> float:
        wall, busy, own = (end - start for start, end in zip(self._start, self._now(), strict=True))
        return max(0.0, (busy - own) / (wall * (os.cpu_count() or 1)))


def cpu_caches() -> str:
    found = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if kind != "Instruction":
            found[f"L{level}"] = size
    return ", ".join(f"{level} {size}" for level, size in found.items()) or "unknown"


def adapter_swaps(
    gguf_path: Path, hf_folder: Path, prompts: list[list[dict[str, str]]]
) -> dict[str, Any]:
    """Swap times on llama.cpp with nothing running, then while a thread keeps answering:
    a new adapter (verified and loaded), a second new one, back to the first (still
    loaded), back to base (with the portal's keep_adapters=2 the base instance was dropped
    when the second adapter came, so this loads it again)."""
    from ml import adapters
    from ml.llamacpp_generator import LlamaCppGenerator
    from tests.support import make_adapter

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="swap-", dir=VAR_DIR))
    try:
        progress("making two random LoRA adapters")
        made = {
            f"bench-{seed}": make_adapter(hf_folder, folder, f"bench-{seed}", seed=seed)
            for seed in (1, 2)
        }
        checksums = {
            version: adapters.read_manifest(path).checksum for version, path in made.items()
        }
        steps: list[tuple[str, str]] = [
            ("load_new", "bench-1"),
            ("load_second_new", "bench-2"),
            ("to_loaded", "bench-1"),
            ("to_base", adapters.BASE),
        ]
        figures: dict[str, Any] = {}
        started = time.perf_counter()
        adapters.verify(made["bench-2"], expected_checksum=checksums["bench-2"], need_gguf=True)
        figures["verify_manifest_ms"] = 1000 * (time.perf_counter() - started)

        def swap(generator: LlamaCppGenerator, version: str) -> float:
            started = time.perf_counter()
            generator.activate(version, made.get(version), checksums.get(version))
            return 1000 * (time.perf_counter() - started)

        progress("adapter swaps, idle")
        generator = LlamaCppGenerator(gguf_path, threads=THREADS, keep_adapters=2)
        for name, version in steps:
            figures[f"idle_{name}_ms"] = swap(generator, version)
        generator.close()

        progress("adapter swaps while answering")
        generator = LlamaCppGenerator(gguf_path, threads=THREADS, keep_adapters=2)
        finished: list[tuple[float, float, str]] = []  # (done at, seconds, adapter)
        failures: list[str] = []
        stop = threading.Event()

        def answer_loop() -> None:
            number = 0
            while not stop.is_set():
                messages = prompts[number % len(prompts)]
                number += 1
                started = time.perf_counter()
                try:
                    result = None
                    for event in generator.stream(messages, SETTINGS):
                        if isinstance(event, GenerationResult):
                            result = event
                    if result is None or not result.text.strip():
                        failures.append(f"empty answer: {result}")
                    else:
                        now = time.perf_counter()
                        finished.append((now, now - started, result.adapter))
                except Exception as exc:  # counting a failed request is what this is for
                    failures.append(f"{type(exc).__name__}: {exc}")

        def in_flight() -> None:
            """Until an answer has just started, and a moment more, so a swap meets it."""
            count = len(finished) + len(failures)
            while len(finished) + len(failures) == count and not failures:
                time.sleep(0.005)
            time.sleep(0.2)

        others = OtherLoad()
        worker = threading.Thread(target=answer_loop, name="answers", daemon=True)
        worker.start()
        while len(finished) < 3 and not failures:  # a few answers undisturbed first
            time.sleep(0.05)
        undisturbed = sorted(seconds for _, seconds, _ in finished)
        window_start = time.perf_counter()
        for name, version in steps:
            in_flight()
            figures[f"busy_{name}_ms"] = swap(generator, version)
        window_end = time.perf_counter()
        in_flight()
        stop.set()
        worker.join()
        generator.close()
        during = [s for done, s, _ in finished if window_start <= done <= window_end]
        figures.update(
            {
                "swap_window_s": window_end - window_start,
                "answers_during_swaps": len(during),
                "answers_total": len(finished),
                "failed_answers": len(failures),
                "failures": failures[:5],
                "answer_ms_undisturbed_median": 1000 * undisturbed[len(undisturbed) // 2],
                "answer_ms_during_swaps_max": 1000 * max(during, default=float("nan")),
                "answers_by_adapter": dict(Counter(adapter for _, _, adapter in finished)),
                "others_cpu_share": others.share(),
            }
        )
        return figures
    finally:
        adapters.discard(folder)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=8, help="timed prompts per engine")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from ml.models import SMOLLM2_NAME, prepare_from_gguf, smollm2_gguf

    torch.set_num_threads(THREADS)
    gguf_folder, gguf_name = smollm2_gguf()
    gguf_path = gguf_folder / gguf_name
    progress("measuring memory bandwidth")
    bandwidth = copy_bandwidth()
    weights = gguf_bytes(gguf_path)
    progress("preparing the float32 HF folder from the GGUF (once)")
    hf_folder = prepare_from_gguf(gguf_folder, gguf_name, VAR_DIR / "models" / SMOLLM2_NAME)

    progress("re-quantizing the GGUF to Q8_0, as the portal serves it (once)")
    q8_path = VAR_DIR / "models" / "SmolLM2-135M-Instruct.Q8_0.gguf"
    if not q8_path.is_file():
        from ml.gguf_requant import requantize_q8_0

        requantize_q8_0(gguf_path, q8_path)
    q8_weights = gguf_bytes(q8_path)
    progress("re-quantizing the GGUF to Q4_0 (GENERATOR_REQUANTIZE=q4_0), once")
    q4_0_path = VAR_DIR / "models" / "SmolLM2-135M-Instruct.Q4_0.gguf"
    if not q4_0_path.is_file():
        from ml.gguf_requant import requantize

        requantize(gguf_path, q4_0_path, "q4_0")
    q4_0_weights = gguf_bytes(q4_0_path)

    *timed, warm_up = rag_prompts(args.prompts)
    llama = LlamaEngine(gguf_path)
    served = LlamaEngine(q8_path)
    fastest = LlamaEngine(q4_0_path)
    hf = TransformersEngine(hf_folder, llama.chat.stop_ids)
    runs: dict[str, list[Run]] = {}
    prompts: dict[str, list[list[int]]] = {}
    busy: dict[str, float] = {}  # other processes' share of the CPU while an engine ran
    engines = (
        ("llamacpp", llama),
        ("llamacpp_q8_0", served),
        ("llamacpp_q4_0", fastest),
        ("transformers", hf),
    )
    for name, engine in engines:
        prompts[name] = [engine.prompt(messages) for messages in timed]
        progress(f"{name}: warm-up")
        engine.run(engine.prompt(warm_up))
        runs[name] = []
        others = OtherLoad()
        for number, prompt in enumerate(prompts[name], start=1):
            runs[name].append(engine.run(prompt))
            run = runs[name][-1]
            progress(
                f"{name} {number}/{len(timed)}: {len(prompt)} prompt tokens, {run.steps} "
                f"generated, first {1000 * run.first_s:.0f} ms, total {1000 * run.total_s:.0f} ms"
            )
        busy[name] = others.share()
    del hf
    speed = {name: rates(engine_runs) for name, engine_runs in runs.items()}
    same_prompts = sum(
        a == b for a, b in zip(prompts["llamacpp"], prompts["transformers"], strict=True)
    )
    same_answers = sum(
        a.tokens == b.tokens for a, b in zip(runs["llamacpp"], runs["transformers"], strict=True)
    )
    lengths = [len(p) for p in prompts["llamacpp"]]
    decode_ratio = (
        speed["llamacpp"]["decode_tokens_per_s"] / speed["transformers"]["decode_tokens_per_s"]
    )
    prefill_ratio = (
        speed["llamacpp"]["tokens_per_s_with_prefill"]
        / speed["transformers"]["tokens_per_s_with_prefill"]
    )
    best = max(bandwidth, key=bandwidth.__getitem__)
    limit = bandwidth[best] * 1e9 / weights["weight_bytes_per_token"]
    share = speed["llamacpp"]["decode_tokens_per_s"] / limit
    # The re-quantized copies: each one's ratios to transformers and bandwidth share.
    requantized: dict[str, dict[str, float]] = {}
    for kind, kind_weights in (("q8_0", q8_weights), ("q4_0", q4_0_weights)):
        rate = speed[f"llamacpp_{kind}"]
        per_token = kind_weights["weight_bytes_per_token"]
        requantized[kind] = {
            "decode_ratio": rate["decode_tokens_per_s"]
            / speed["transformers"]["decode_tokens_per_s"],
            "with_prefill_ratio": rate["tokens_per_s_with_prefill"]
            / speed["transformers"]["tokens_per_s_with_prefill"],
            "weight_bytes_per_token": per_token,
            "bandwidth_share": rate["decode_tokens_per_s"] / (bandwidth[best] * 1e9 / per_token),
        }
    mean_context = sum(len(r.prompt) + r.steps / 2 for r in runs["llamacpp"]) / len(lengths)

    swaps = adapter_swaps(gguf_path, hf_folder, timed)

    figures = {
        "prompts": len(timed),
        "prompt_tokens_min": min(lengths),
        "prompt_tokens_max": max(lengths),
        "prompt_tokens_mean": sum(lengths) / len(lengths),
        "threads": THREADS,
        "max_new_tokens": MAX_NEW_TOKENS,
        "repetition_penalty": SETTINGS.repetition_penalty,
        "same_prompt_tokens": same_prompts,
        "same_answer_tokens": same_answers,
        **{f"{name}_{key}": value for name, s in speed.items() for key, value in s.items()},
        **{f"{name}_others_cpu_share": value for name, value in busy.items()},
        "decode_ratio": decode_ratio,
        "with_prefill_ratio": prefill_ratio,
        **bandwidth,
        "bandwidth_used": best,
        "cpu_caches": cpu_caches(),
        **weights,
        "kv_bytes_per_token_mean_context": weights["kv_bytes_per_position"] * mean_context,
        "bandwidth_limit_tokens_per_s": limit,
        "bandwidth_share": share,
        **{f"{kind}_{key}": value for kind, r in requantized.items() for key, value in r.items()},
        **{f"swap_{key}": value for key, value in swaps.items()},
    }

    show(
        "prompts",
        f"{len(timed)} RAG prompts, {min(lengths)}-{max(lengths)} tokens (mean "
        f"{figures['prompt_tokens_mean']:.0f}); {THREADS} threads, greedy, max "
        f"{MAX_NEW_TOKENS} new tokens, repetition penalty {SETTINGS.repetition_penalty}",
    )
    show(
        "same tokens in both engines",
        f"prompts {same_prompts}/{len(timed)}, answers {same_answers}/{len(timed)} "
        "(float32 vs Q4_1 weights; llama.cpp's penalty window is 64 tokens)",
    )
    for name, label in (
        ("transformers", "transformers float32"),
        ("llamacpp", "llama.cpp Q4_1"),
        ("llamacpp_q8_0", "llama.cpp Q8_0 (served)"),
        ("llamacpp_q4_0", "llama.cpp Q4_0"),
    ):
        s = speed[name]
        show(
            label,
            f"decode {s['decode_tokens_per_s']:6.1f} tokens/s | with prefill "
            f"{s['tokens_per_s_with_prefill']:6.1f} tokens/s | first token "
            f"{s['first_token_ms_mean']:.0f} ms mean | {s['generated_tokens']} tokens | other "
            f"processes {busy[name]:.0%} CPU",
        )
    show(
        "llama.cpp / transformers",
        f"decode {decode_ratio:.1f}x  target >= 8x  {verdict(decode_ratio >= 8)} | with "
        f"prefill {prefill_ratio:.1f}x",
    )
    for kind, r in requantized.items():
        show(
            f"llama.cpp {kind.upper()} / transformers",
            f"decode {r['decode_ratio']:.1f}x  target >= 8x  {verdict(r['decode_ratio'] >= 8)} "
            f"| with prefill {r['with_prefill_ratio']:.1f}x | bandwidth share "
            f"{r['bandwidth_share']:.2f}  target >= 0.4  {verdict(r['bandwidth_share'] >= 0.4)} "
            f"({r['weight_bytes_per_token'] / 1e6:.1f} MB per token)",
        )
    show(
        "memory bandwidth (copy)",
        f"1 thread {bandwidth['bandwidth_1_thread_gb_s']:.1f} GB/s | 2 threads "
        f"{bandwidth['bandwidth_2_threads_gb_s']:.1f} GB/s (read + write, {COPY_MIB} MiB, best "
        f"of 5); using {best.removeprefix('bandwidth_').removesuffix('_gb_s').replace('_', ' ')}",
    )
    show(
        "weights read per token",
        f"{weights['weight_bytes_per_token'] / 1e6:.1f} MB (tensors of the GGUF; tied embeddings: "
        f"{weights['tied_embeddings']}, so the output projection reads the "
        f"{weights['embedding_bytes'] / 1e6:.1f} MB embedding) + KV cache "
        f"{figures['kv_bytes_per_token_mean_context'] / 1e6:.1f} MB at the mean context",
    )
    show(
        "decode vs bandwidth limit",
        f"{speed['llamacpp']['decode_tokens_per_s']:.1f} of {limit:.1f} tokens/s = {share:.2f}  "
        f"target >= 0.4  {verdict(share >= 0.4)}",
    )
    print(
        f"  note: the ~{weights['file_bytes'] / 1e6:.0f} MB model partly fits in the CPU caches "
        f"({figures['cpu_caches']}), so the share can exceed what DRAM bandwidth alone allows."
    )
    show(
        "adapter swap idle (ms)",
        f"verify manifest {swaps['verify_manifest_ms']:.0f} | new {swaps['idle_load_new_ms']:.0f}"
        f" | second new {swaps['idle_load_second_new_ms']:.0f} | to loaded "
        f"{swaps['idle_to_loaded_ms']:.0f} | to base {swaps['idle_to_base_ms']:.0f}",
    )
    show(
        "adapter swap answering (ms)",
        f"new {swaps['busy_load_new_ms']:.0f} | second new {swaps['busy_load_second_new_ms']:.0f}"
        f" | to loaded {swaps['busy_to_loaded_ms']:.0f} | to base {swaps['busy_to_base_ms']:.0f}"
        " (each waits for the answer in flight)",
    )
    show(
        "answers during swaps",
        f"{swaps['answers_during_swaps']} completed in {swaps['swap_window_s']:.1f} s, failed "
        f"{swaps['failed_answers']}  target 0  {verdict(swaps['failed_answers'] == 0)} | answer "
        f"{swaps['answer_ms_undisturbed_median']:.0f} ms undisturbed, at most "
        f"{swaps['answer_ms_during_swaps_max']:.0f} ms during | by adapter "
        f"{swaps['answers_by_adapter']} | other processes {swaps['others_cpu_share']:.0%} CPU",
    )
    for failure in swaps["failures"]:
        print(f"  failed: {failure}")
    if max(*busy.values(), swaps["others_cpu_share"]) > 0.1:
        print(
            "  note: other processes were busy on this machine during the run (their share of "
            "the CPU is shown above); the speeds are low, llama.cpp's most: rerun on a quiet one."
        )
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
