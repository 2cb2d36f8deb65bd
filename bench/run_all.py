"""Runs the benchmarks in order, each in its own process, and prints their reports.

ingest_throughput (target: ingest >= 0.8 x raw embedder throughput), search_latency
(target: p95 <= 50 ms and recall@10 >= 0.95 on 100k chunks), retrieval_eval (target:
top-5 >= 0.90, searched among the same 100k chunks) and answer_quality (citation accuracy,
key-fact recall, declines, latency split, overhead <= 10%, adapter swap time),
generation_speed (llama.cpp against transformers: decode >= 8x, >= 0.4 of the memory
bandwidth limit, adapter swaps while answering), judge_quality (Spearman between the
local judge's scores and known quality levels), ppo_speed (our PPO's seconds per update
and peak memory against TRL 1.12's PPO and TRL's RLOO) learning_loop (the before/after
table of one loop on the sample set) and decline_probe (declines on the held-out synthetic
pairs that loop's supervised stage made). Each keeps its own database under
var/bench/<name>/ (decline_probe shares learning_loop's), so the 100k-chunk library is
built only once.

    .venv/bin/python bench/run_all.py      (or: make bench)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = {
    "ingest_throughput.py": "ingest",
    "search_latency.py": "search",
    "retrieval_eval.py": "search",
    "answer_quality.py": "answers",
    "generation_speed.py": "generation",
    "judge_quality.py": "judge",
    "ppo_speed.py": "ppo_speed",
    "learning_loop.py": "loop",
    "decline_probe.py": "loop",
}


def main() -> int:
    root = Path(os.environ.get("PORTAL_VAR_DIR") or BENCH.parent / "var" / "bench")
    failed = []
    for script, folder in SCRIPTS.items():
        env = {**os.environ, "PORTAL_VAR_DIR": str(root / folder)}
        print(f"=== {script}", flush=True)
        started = time.perf_counter()
        # stdout (the report) and stderr (progress) both pass straight through.
        result = subprocess.run([sys.executable, str(BENCH / script)], env=env, check=False)
        seconds = time.perf_counter() - started
        status = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(f"=== {script}: {status} in {seconds:.0f}s\n", flush=True)
        if result.returncode:
            failed.append(script)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
