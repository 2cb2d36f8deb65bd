"""PPO seconds per update and peak memory against peers on the same model, data and reward.

Contenders, each in its own process (so peak RSS is its own), one after the other:

    ours-torch  ml.training.ppo (LoRA policy, value head on the same backbone, the reference
                is the policy with the adapter disabled), rollouts sampled by torch's
                generate (rollout_engine="torch")
    ours-fast   the same, rollouts sampled by llama.cpp (rollout_engine="llamacpp"): each
                update writes the policy's current LoRA as a GGUF LoRA and samples with it on
                the policy's GGUF (SmolLM2's own Q4_1 file, which the float32 folder is
                de-quantized from; for tiny, the tiny Llama exported to a float32 GGUF once),
                with as many llama.cpp threads as torch gets; log-probs, values and
                gradients stay in torch
    trl112-ppo  TRL 1.12's experimental PPOTrainer (trl.experimental.ppo), pip-installed into
                a throw-away folder (--trl112, default /tmp/trl112) and put first on
                PYTHONPATH; its value model is a second full classifier, trained in full
    rloo        TRL's RLOOTrainer from the venv (no value model; 2 samples per prompt)

All four train a fresh LoRA on the same policy, score with the same reward model (a
sequence classifier on the policy's backbone with a random one-score head: fine for timing)
on chat-template prompt tokens + response, and run float32 on the CPU with the same thread
count (ours-fast samples from the GGUF, see above). One update = batch_size rollouts
sampled, then ppo_epochs passes of batch_size / mini_batch_size optimizer steps. The first
--warmup updates are not counted; the figure is the median of the next --updates. Ratios,
measured in the same run: ours-torch / ours-fast (the llama.cpp speed-up; the target on
SmolLM2 is >= 3x), then ours-fast / peer and ours-torch / peer. Peak RSS is the process's
maximum (model loading included); "resp tok" is the mean sampled response length (TRL 1.12
logs only how many responses ended with EOS, shown as "eos N%").

    .venv/bin/python bench/ppo_speed.py [--model tiny|smollm2] [--updates 3] [--json]
        [--contenders ours-torch,ours-fast,trl112-ppo,rloo]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLE_QA = REPO.parent / "shared" / "eval" / "sample-qa.jsonl"
SMOLLM2 = REPO / "var" / "test" / "models" / "SmolLM2-135M-Instruct"
WORK = REPO / "var" / "bench" / "ppo_speed"
PEER = Path(__file__).resolve().parent / "_ppo_peer.py"
CONTENDERS = ("ours-torch", "ours-fast", "trl112-ppo", "rloo")
# (numerator, denominator) of the printed ratios, when both ran.
RATIOS = (
    ("ours-torch", "ours-fast"),
    ("ours-fast", "trl112-ppo"),
    ("ours-fast", "rloo"),
    ("ours-torch", "trl112-ppo"),
    ("ours-torch", "rloo"),
)
SPEED_UP_TARGET = 3.0  # ours-torch / ours-fast seconds per update, on SmolLM2
TRL112 = "1.12.0"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SETTINGS: dict[str, Any] = {
    "lora_r": 32,
    "lora_alpha": 64,
    "lora_dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "batch_size": 4,  # rollouts per update (RLOO: 2 prompts x 2 samples)
    "mini_batch_size": 2,  # rollouts per optimizer step
    "ppo_epochs": 1,  # RLOO: num_iterations
    "rloo_generations": 2,
    "max_new_tokens": 32,
    "temperature": 0.7,
    "learning_rate": 1.41e-5,
    "kl_coef": 0.05,  # ours: initial value of the adaptive controller
    "max_prompt_tokens": 512,
    "seed": 0,
}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}/{five:.2f}/{fifteen:.2f}"


def build_prompts(count: int) -> list[list[dict[str, str]]]:
    """Portal-style prompts: a sample question with its reference quote as the one passage."""
    from ml.prompting import Passage, build_messages

    rows = [json.loads(line) for line in SAMPLE_QA.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if row.get("quote")][:count]
    return [
        build_messages(
            row["question"],
            [Passage(1, i, row["document"], row.get("page"), row.get("section", ""), row["quote"])],
        )
        for i, row in enumerate(rows, start=1)
    ]


def policy_folder(model: str) -> Path:
    from ml.training.common import make_tiny_llama

    if not (SMOLLM2 / "config.json").is_file():
        from ml.models import prepare_from_gguf, smollm2_gguf

        progress("preparing SmolLM2-135M-Instruct from its GGUF")
        prepare_from_gguf(*smollm2_gguf(), SMOLLM2)
    if model == "smollm2":
        return SMOLLM2
    return make_tiny_llama(WORK / "tiny-llama", tokenizer_from=SMOLLM2)


def policy_gguf(model: str, policy: Path) -> Path:
    """The GGUF that ours-fast samples from: SmolLM2's own file (SMOLLM2 is de-quantized from
    it), or the tiny Llama of ``policy`` exported once, with SmolLM2's tokenizer metadata."""
    from ml.models import smollm2_gguf

    folder, filename = smollm2_gguf()
    if model == "smollm2":
        return folder / filename
    out = WORK / f"{policy.name}.gguf"
    if not out.is_file():
        from tests.gguf_tiny import export_tiny_llama

        progress(f"exporting {policy.name} to {out.name}")
        staging = out.with_name(out.name + ".partial")
        staging.unlink(missing_ok=True)
        export_tiny_llama(policy, tokenizer_gguf=folder / filename, out=staging)
        staging.replace(out)
    return out


def reward_folder(policy: Path) -> Path:
    """A one-score classifier on the policy's backbone and tokenizer, head seeded at random,
    saved once so that every contender loads the same weights."""
    out = WORK / f"reward-{policy.name}"
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(policy)
    model = AutoModelForSequenceClassification.from_pretrained(
        policy, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    staging = out.with_name(out.name + ".partial")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.replace(out)
    return out


def prompt_lengths(policy: Path, prompts: list[list[dict[str, str]]]) -> list[int]:
    from transformers import AutoTokenizer

    from ml.training.ppo import encode_prompt

    tokenizer = AutoTokenizer.from_pretrained(policy)
    return [len(encode_prompt(tokenizer, p, SETTINGS["max_prompt_tokens"])) for p in prompts]


def ensure_trl112(target: Path) -> str:
    """The path TRL 1.12 is importable from, installed there (no dependencies: the venv's
    torch, transformers, accelerate and peft are used) when missing."""
    metadata = target / f"trl-{TRL112}.dist-info"
    if not metadata.is_dir():
        progress(f"pip install --no-deps --target {target} trl=={TRL112}")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--target",
                str(target),
                f"trl=={TRL112}",
            ],
            check=True,
        )
    return str(target)


def run_contender(
    name: str, spec_path: Path, threads: int, trl112: str | None, timeout: float
) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
            "TRL_EXPERIMENTAL_SILENCE": "1",
            "CUDA_VISIBLE_DEVICES": "",
        }
    )
    env.pop("PYTHONPATH", None)
    if name == "trl112-ppo":
        env["PYTHONPATH"] = trl112 or ""
    load_before = load()
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(PEER), name, str(spec_path)],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"contender": name, "error": f"timed out after {timeout:.0f} s"}
    result: dict[str, Any] = {"contender": name}
    lines = done.stdout.strip().splitlines()
    if done.returncode == 0 and lines:
        result = json.loads(lines[-1])
    else:
        errors = [line for line in done.stderr.strip().splitlines() if line.strip()]
        result["error"] = errors[-1] if errors else f"exit status {done.returncode}"
        result["stderr_tail"] = "\n".join(errors[-25:])
    result["load_before"] = load_before
    result["load_after"] = load()
    result["process_seconds"] = time.perf_counter() - started
    return result


def summarise(result: dict[str, Any], warmup: int) -> None:
    if "error" in result:
        return
    counted = result["seconds"][warmup:]
    result["seconds_per_update"] = statistics.median(counted) if counted else None
    result["updates_counted"] = len(counted)
    phases = result.get("phases") or {}
    if counted and phases:
        medians = {name: statistics.median(values[warmup:]) for name, values in phases.items()}
        result["phase_seconds"] = medians
        # Amdahl: with sampling made free, an update still costs scoring and optimising.
        share = medians["rollout"] / sum(medians.values())
        result["rollout_share"] = share
        result["max_speed_up_from_rollouts"] = 1 / (1 - share) if share < 1 else None


def ratio(numerator: dict[str, Any], denominator: dict[str, Any], key: str) -> float | None:
    if numerator.get(key) is None or denominator.get(key) is None:
        return None
    return numerator[key] / denominator[key]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    parser.add_argument("--updates", type=int, default=3, help="counted updates (median)")
    parser.add_argument("--warmup", type=int, default=1, help="updates run first, not counted")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, every contender")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--trl112", type=Path, default=Path("/tmp/trl112"))
    parser.add_argument("--timeout", type=float, default=1500, help="seconds per contender")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    names = [n for n in args.contenders.split(",") if n]
    if unknown := set(names) - set(CONTENDERS):
        parser.error(f"unknown contenders: {sorted(unknown)}")

    WORK.mkdir(parents=True, exist_ok=True)
    policy = policy_folder(args.model)
    reward = reward_folder(policy)
    prompts = build_prompts(args.prompts)
    prompts_path = WORK / "prompts.jsonl"
    prompts_path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    lengths = prompt_lengths(policy, prompts)
    gguf = policy_gguf(args.model, policy) if "ours-fast" in names else None
    spec = {
        **SETTINGS,
        "policy": str(policy),
        "reward_model": str(reward),
        "prompts": str(prompts_path),
        "threads": args.threads,
        "updates_total": args.warmup + args.updates,
        "rollout_gguf": str(gguf) if gguf else "",
    }
    spec_path = WORK / f"spec-{args.model}.json"
    spec_path.write_text(json.dumps(spec, indent=1))

    trl112: str | None = None
    trl112_error = ""
    if "trl112-ppo" in names:
        try:
            trl112 = ensure_trl112(args.trl112)
        except (subprocess.CalledProcessError, OSError) as exc:
            trl112_error = f"install failed: {exc}"

    results: dict[str, dict[str, Any]] = {}
    for name in names:
        if name == "trl112-ppo" and trl112 is None:
            results[name] = {"contender": name, "error": trl112_error}
            continue
        progress(f"{name}: running (load {load()})")
        results[name] = run_contender(name, spec_path, args.threads, trl112, args.timeout)
        summarise(results[name], args.warmup)
        progress(f"{name}: done in {results[name]['process_seconds']:.0f} s")

    ratios = {
        f"{top} / {bottom}": {
            "seconds_per_update": ratio(results[top], results[bottom], "seconds_per_update"),
            "peak_rss_mb": ratio(results[top], results[bottom], "peak_rss_mb"),
        }
        for top, bottom in RATIOS
        if top in results and bottom in results
    }
    report = {
        "model": args.model,
        "policy": str(policy),
        "settings": {
            **SETTINGS,
            "threads": args.threads,
            "rollout_gguf": str(gguf) if gguf else None,
            "warmup": args.warmup,
            "updates": args.updates,
            "prompts": len(prompts),
            "prompt_tokens": {
                "min": min(lengths),
                "median": statistics.median(lengths),
                "max": max(lengths),
            },
            "dtype": "float32",
            "device": "cpu",
            "cpus": os.cpu_count(),
        },
        "results": results,
        "ratios": ratios,
        "load_at_end": load(),
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    show(report)


def show(report: dict[str, Any]) -> None:
    s = report["settings"]
    print(f"PPO speed: {report['model']} ({report['policy']})")
    print(
        f"  float32 on CPU, {s['threads']} torch thread(s) per contender, {s['cpus']} CPUs; "
        f"LoRA r={s['lora_r']} alpha={s['lora_alpha']} dropout={s['lora_dropout']} on "
        f"{'/'.join(m.split('_')[0] for m in s['target_modules'])}"
    )
    fast = report["results"].get("ours-fast", {})
    if s["rollout_gguf"]:
        llama_cpp = f"llama.cpp {fast['llama_cpp']}" if "llama_cpp" in fast else "llama.cpp"
        print(
            f"  ours-fast samples with {llama_cpp} ({s['threads']} thread(s)) from "
            f"{Path(s['rollout_gguf']).name}"
        )
    print(
        f"  update = {s['batch_size']} rollouts (RLOO: {s['batch_size'] // s['rloo_generations']}"
        f" prompts x {s['rloo_generations']}), {s['ppo_epochs']} epoch of "
        f"{s['batch_size'] // s['mini_batch_size']} optimizer steps x {s['mini_batch_size']}; "
        f"max_new_tokens {s['max_new_tokens']}, temperature {s['temperature']}, "
        f"lr {s['learning_rate']}, KL coef {s['kl_coef']}"
    )
    pt = s["prompt_tokens"]
    print(
        f"  {s['prompts']} prompts ({pt['min']}-{pt['max']} tokens, median {pt['median']}); "
        f"median of {s['updates']} updates after {s['warmup']} warm-up"
    )
    print()
    print(
        f"  {'contender':<12} {'s/update':>9} {'min-max':>13} {'peak RSS MB':>12} "
        f"{'RSS@import':>11} {'resp tok':>9}  load before -> after"
    )
    for name, r in report["results"].items():
        if "error" in r:
            label = "failed" if name.startswith("ours") else "peer unavailable"
            print(f"  {name:<12} {label}: {r['error']}")
            continue
        counted = r["seconds"][s["warmup"] :]
        spread = f"{min(counted):.2f}-{max(counted):.2f}" if counted else "-"
        tokens = r.get("response_tokens")
        if tokens is None and r.get("eos_share") is not None:
            tokens_text = f"eos {r['eos_share']:.0%}"
        else:
            tokens_text = f"{tokens:.1f}" if tokens is not None else "-"
        print(
            f"  {name:<12} {r['seconds_per_update']:>9.2f} {spread:>13} {r['peak_rss_mb']:>12.0f} "
            f"{r['rss_after_imports_mb']:>11.0f} {tokens_text:>9}  "
            f"{r['load_before']} -> {r['load_after']}"
        )
    print()
    for name, r in report["results"].items():
        if "phase_seconds" in r:
            phases = ", ".join(f"{k} {v:.2f} s" for k, v in r["phase_seconds"].items())
            bound = r["max_speed_up_from_rollouts"]
            print(
                f"  {name:<12} per update: {phases}; sampling is {r['rollout_share']:.0%}, "
                f"so free rollouts would make it at most "
                f"{f'{bound:.2f}x' if bound else 'unboundedly'} faster"
            )
    print()
    for pair, figures in report["ratios"].items():
        parts = [
            f"{key.replace('_', ' ')} {value:.2f}x" if value is not None else f"{key}: n/a"
            for key, value in figures.items()
        ]
        if pair == "ours-torch / ours-fast":
            on = "" if report["model"] == "smollm2" else " on smollm2"
            parts[0] += f" (target >= {SPEED_UP_TARGET:g}x{on})"
        print(f"  {pair}: " + ", ".join(parts))
    versions = next((r["versions"] for r in report["results"].values() if "versions" in r), None)
    if versions:
        print(
            f"  torch {versions['torch']}, transformers {versions['transformers']}, "
            f"peft {versions['peft']}"
        )
    for name, r in report["results"].items():
        if "versions" in r and not name.startswith("ours"):  # ours does not use TRL
            extra = ""
            if "activation_checkpointing" in r:
                extra = (
                    f", activation checkpointing {'on' if r['activation_checkpointing'] else 'off'}"
                )
            if "optimizer_steps" in r:
                extra += f", {r['optimizer_steps']} optimizer steps"
            print(f"  {name}: trl {r['versions']['trl']} from {r['versions']['trl_path']}{extra}")
    print(f"  load average (1/5/15 min) at end: {report['load_at_end']}")


if __name__ == "__main__":
    main()
