"""Declines on questions nothing was tuned on: the held-out synthetic pairs.

The sample set has only 4 unanswerable questions, and the sentence gate's threshold was
chosen on them, so its decline figure is on tuned data. The held-out pairs
(``synthetic-heldout``) never teach and no threshold, prompt or setting was chosen on them.
Each is answered twice with the same adapter, through the same pipeline (gate included):

- over its own retrieval, as a user would ask it: a decline there is a wrong one;
- over the nearest passages that do not hold its answer (its source, its page and every
  passage stating one of its values left out; ``decline_hits``, as SFT's decline examples
  are built, but from pairs SFT never saw): a decline there is right, an answer is made up.

Declines are split by who made them: the passage-similarity gate (ANSWER_MIN_SIMILARITY),
the sentence gate (ANSWER_MIN_SENTENCE_SCORE) or the model.

Runs on an instance that has had its supervised stage (PORTAL_VAR_DIR; var/bench/loop by
default, the folder bench/learning_loop.py bootstraps).

Usage: bench/decline_probe.py [--adapter served|base|V] [--limit N] [--json]
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
sys.path.insert(0, str(REPO / "bench"))

from _common import migrate, progress, show  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.adapters.selectors import served_target  # noqa: E402
from apps.answering.pipeline import AnswerRecord, answer_run  # noqa: E402
from apps.references.models import ReferenceSet  # noqa: E402
from apps.references.selectors import references_measuring  # noqa: E402
from apps.training.services.sft import decline_hits  # noqa: E402


def _below_similarity(record: AnswerRecord) -> bool:
    """Declined by the first gate: the best passage below ANSWER_MIN_SIMILARITY (the
    sentence gate comes after it)."""
    return record.model_name == "retrieval-gate" and (
        not record.retrieved or record.retrieved[0]["similarity"] < settings.ANSWER_MIN_SIMILARITY
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", default="served", help="served, base or a version")
    parser.add_argument("--limit", type=int, default=0, help="first N pairs only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    migrate()
    adapter = served_target().version if args.adapter == "served" else args.adapter
    pairs = list(
        references_measuring(set_names=[ReferenceSet.SYNTHETIC_HELDOUT])
        .filter(answerable=True)
        .order_by("pk")
    )[: args.limit or None]
    if not pairs:
        raise SystemExit(
            "no held-out synthetic pairs here: run bench/learning_loop.py (or run_loop "
            "--algorithm sft) on this instance first"
        )
    progress(f"{len(pairs)} held-out pairs, adapter {adapter}")
    wrong = wrong_gated = wrong_similarity = right = probed = gated = gated_similarity = 0
    for number, pair in enumerate(pairs, start=1):
        own = answer_run(question=pair.question, adapter=adapter)
        wrong += own.declined
        wrong_gated += own.model_name == "retrieval-gate"
        wrong_similarity += _below_similarity(own)
        hits = decline_hits(pair)
        if hits is not None:
            other = answer_run(question=pair.question, adapter=adapter, hits=hits)
            probed += 1
            right += other.declined
            gated += other.model_name == "retrieval-gate"
            gated_similarity += _below_similarity(other)
        progress(f"{number}/{len(pairs)} own {'DECLINED' if own.declined else 'answered'}")
    figures = {
        "adapter": adapter,
        "pairs": len(pairs),
        "answerable_wrongly_declined": wrong / len(pairs),
        "answerable_wrongly_declined_by_gate": wrong_gated / len(pairs),
        "answerable_wrongly_declined_by_similarity_gate": wrong_similarity / len(pairs),
        "probed": probed,
        "unrelated_declined": right / max(1, probed),
        "unrelated_declined_by_gate": gated / max(1, probed),
        "unrelated_declined_by_similarity_gate": gated_similarity / max(1, probed),
    }
    show("adapter", adapter)
    show(
        "own passages",
        f"{wrong}/{len(pairs)} wrongly declined ({figures['answerable_wrongly_declined']:.3f}), "
        f"{wrong_gated} of them by a gate ({wrong_similarity} by the passage similarity, "
        f"{wrong_gated - wrong_similarity} by the sentence score)",
    )
    show(
        "unrelated passages",
        f"{right}/{probed} declined ({figures['unrelated_declined']:.3f}), "
        f"{gated} of them by a gate ({gated_similarity} by the passage similarity, "
        f"{gated - gated_similarity} by the sentence score)",
    )
    if args.json:
        print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
