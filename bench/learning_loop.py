"""One pass of the learning loop on the sample set, with the local judge: the pilot's
before/after table for the served (base) model against the candidate the loop trained.

The 40 sample questions are split in two: the odd ones are the training references whose
sampled answers, judged against the reference, become preference pairs; the even ones are
the validation set both adapters answer. Nothing from a validation question is trained on.
The chain is the nightly one (sample and judge, build pairs, reward model, PPO, evaluate,
gate), with settings sized for a 2-core CPU (see SETTINGS below; a GPU takes the defaults).

    .venv/bin/python bench/learning_loop.py [--algorithm ppo|dpo|kto] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
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

from apps.adapters.services import adapter_promote  # noqa: E402
from apps.qa.generation import setup_base_model  # noqa: E402
from apps.references.services import references_import  # noqa: E402
from apps.training.models import Evaluation  # noqa: E402
from apps.training.presenters import REPORT_METRICS  # noqa: E402
from apps.training.selectors import compared_items, score_distribution  # noqa: E402
from apps.training.services.loop import loop_run  # noqa: E402


def _split_sets() -> None:
    lines = SAMPLE_QA.read_text().splitlines()
    with tempfile.TemporaryDirectory() as folder:
        for name, part in (("training", lines[0::2]), ("validation", lines[1::2])):
            path = Path(folder) / f"{name}.jsonl"
            path.write_text("\n".join(part) + "\n")
            references_import(path=path, set_name=name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algorithm", default="ppo", choices=["ppo", "dpo", "kto"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    migrate()
    setup_base_model()
    ensure_ingested(CORPUS_PDFS)
    _split_sets()
    adapter_promote(version="base", reason="benchmark starts from the base model")
    progress(f"running the loop ({args.algorithm}); this takes a while on CPU")
    loop = loop_run(algorithm=args.algorithm)
    steps = {s["step"]: s for s in loop.steps}
    if loop.status == "failed":
        print(json.dumps({"status": loop.status, "error": loop.error, "steps": loop.steps}))
        raise SystemExit(1)
    served = Evaluation.objects.get(pk=steps["evaluate_served"]["result"]["evaluation"])
    candidate = Evaluation.objects.get(pk=steps["evaluate_candidate"]["result"]["evaluation"])
    figures: dict[str, object] = {
        "status": loop.status,
        "candidate": loop.candidate,
        "gate": loop.gate.get("reasons") or "passed",
        "steps_seconds": {s["step"]: s["seconds"] for s in loop.steps},
        "preference_pairs": steps["build_preferences"]["result"]["size"],
        "reward_heldout_accuracy": steps.get("train_reward", {})
        .get("result", {})
        .get("metrics", {})
        .get("heldout_accuracy_after"),
    }
    for key, _label in REPORT_METRICS:
        figures[f"{key} before / after"] = (served.metrics.get(key), candidate.metrics.get(key))
    figures["score distribution before"] = score_distribution(served)
    figures["score distribution after"] = score_distribution(candidate)
    figures["most changed"] = [
        (row.question[:60], row.served_score, row.candidate_score)
        for row in compared_items(served, candidate, limit=5)
    ]
    if args.json:
        print(json.dumps(figures, default=str))
    else:
        for label, value in figures.items():
            show(label, value)


if __name__ == "__main__":
    main()
