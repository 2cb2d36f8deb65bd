"""One preference loop (PPO by default) from the SFT adapter, with the configured judge:
the pilot's before/after table, each figure on the same 100+ evaluation questions (the
sample set as validation plus the held-out slice of the synthetic pairs), the mean AI score
with its 95% bootstrap interval.

It runs on an instance (PORTAL_VAR_DIR; var/bench/loop by default). The supervised stage
runs first when it has not yet (``run_loop --algorithm sft``: synthetic pairs, SFT, gate);
then one preference loop starts from whatever is served (the SFT adapter once promoted).
Settings are sized for a 2-core CPU (SETTINGS below; a GPU takes the defaults).

    .venv/bin/python bench/learning_loop.py [--algorithm ppo|dpo|kto] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PORTAL_VAR_DIR", str(REPO / "var" / "bench" / "loop"))
os.environ.setdefault("ADAPTER_WATCH", "false")
os.environ.setdefault("JUDGE_ON_ANSWER", "false")
SETTINGS = {
    "GENERATION_MAX_NEW_TOKENS": "64",
    "LOOP_SAMPLE_QUESTIONS": "20",
    "LOOP_SAMPLES_PER_QUESTION": "4",
    "LOOP_SAMPLE_TEMPERATURE": "0.9",
    "PREFERENCE_MIN_MARGIN": "1.0",
    "TRAINING_DEFAULTS": json.dumps(
        {
            "reward": {"num_train_epochs": 10, "learning_rate": 5e-5},
            "ppo": {
                "batch_size": 4,
                "mini_batch_size": 2,
                "total_updates": 8,
                "max_new_tokens": 48,
                "max_prompt_tokens": 768,
            },
        }
    ),
}
for name, value in SETTINGS.items():
    os.environ.setdefault(name, value)
sys.path.insert(0, str(REPO / "bench"))

from _common import CORPUS_PDFS, SAMPLE_QA, ensure_ingested, migrate, progress, show  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.adapters.selectors import served_target  # noqa: E402
from apps.references.models import ReferenceSet  # noqa: E402
from apps.references.services import references_import  # noqa: E402
from apps.training.models import Evaluation, LoopRun  # noqa: E402
from apps.training.presenters import REPORT_METRICS  # noqa: E402
from apps.training.selectors import compared_items, score_distribution  # noqa: E402
from apps.training.services.loop import loop_run  # noqa: E402


def _stage_table(loop: LoopRun, suffix: str) -> dict[str, object]:
    """The before/after figures of one stage of ``loop`` (suffix "" or "_sft")."""
    steps = {s["step"]: s for s in loop.steps}
    if f"evaluate_candidate{suffix}" not in steps:
        return {}
    served = Evaluation.objects.get(pk=steps[f"evaluate_served{suffix}"]["result"]["evaluation"])
    candidate = Evaluation.objects.get(
        pk=steps[f"evaluate_candidate{suffix}"]["result"]["evaluation"]
    )
    figures: dict[str, object] = {"questions": served.metrics.get("n")}
    for key, _label in REPORT_METRICS:
        figures[f"{key} before / after"] = (served.metrics.get(key), candidate.metrics.get(key))
    figures["ai_score 95% interval before / after"] = tuple(
        (e.metrics.get("ai_score_low"), e.metrics.get("ai_score_high")) for e in (served, candidate)
    )
    figures["score distribution before"] = score_distribution(served)
    figures["score distribution after"] = score_distribution(candidate)
    figures["most changed"] = [
        (row.question[:60], row.served_score, row.candidate_score)
        for row in compared_items(served, candidate, limit=5)
    ]
    return figures


def _summary(loop: LoopRun) -> dict[str, object]:
    return {
        "loop": loop.pk,
        "status": loop.status,
        "served_before": loop.served_before,
        "candidate": loop.candidate,
        "gate": loop.gate.get("reasons") or "passed",
        "error": loop.error,
        "minutes": round(sum(s["seconds"] for s in loop.steps) / 60, 1),
        "steps_seconds": {s["step"]: s["seconds"] for s in loop.steps},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algorithm", default="ppo", choices=["ppo", "dpo", "kto"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    migrate()
    ensure_ingested(CORPUS_PDFS)
    if not ReferenceSet.objects.filter(name="validation").exists():
        references_import(path=SAMPLE_QA, set_name="validation")
    report: dict[str, dict[str, object]] = {}
    supervised = LoopRun.objects.filter(algorithm="sft").exclude(status="failed").first()
    if supervised is None:
        progress("no supervised stage yet: running it first (synthesize, SFT, gate)")
        supervised = loop_run(algorithm="sft")
        report["supervised"] = {**_summary(supervised), **_stage_table(supervised, "_sft")}
        if supervised.status == "failed":
            print(json.dumps(report, default=str))
            raise SystemExit(1)
    settings.LOOP_SUPERVISED_STAGE = False
    progress(f"running one {args.algorithm} loop from {served_target().version}")
    loop = loop_run(algorithm=args.algorithm)
    steps = {s["step"]: s for s in loop.steps}
    report["preferences"] = {
        **_summary(loop),
        "preference_pairs": steps.get("build_preferences", {}).get("result", {}).get("size"),
        "reward_heldout_accuracy": steps.get("train_reward", {})
        .get("result", {})
        .get("metrics", {})
        .get("heldout_accuracy_after"),
        **_stage_table(loop, ""),
    }
    if args.json:
        print(json.dumps(report, default=str))
    else:
        for stage, figures in report.items():
            print(f"--- {stage}")
            for label, value in figures.items():
                show(label, value)
    if loop.status == "failed":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
