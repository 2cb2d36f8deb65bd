"""How well the local judge orders answers of known quality, and how fast it judges.

For each of the 40 questions in ../shared/eval/sample-qa.jsonl it builds four responses of
known quality: the reference answer (level 3), the reference cut off mid-sentence at 60%
of its characters (level 2), a refusal (level 1; for the 4 questions the documents do not
cover the refusal is the right answer, level 3) and the reference answer of a different
question (level 0; for uncovered questions, a substantive answer). It judges them with the
local judge and prints: Spearman's rho between scores and levels, the mean (min-max) score
per level and per check, the number of ordering violations (within a question, a response
of a higher level scored strictly below one of a lower level) and ties, and the judging
throughput in one judge_many call and one item at a time.

Needs no database: unlike the other benchmarks it does not import _common (which sets up
Django and starts the embedded PostgreSQL), only ml/.

Usage: bench/judge_quality.py [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE_QA = REPO.parent / "shared" / "eval" / "sample-qa.jsonl"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ml.agreement import spearman  # noqa: E402
from ml.embeddings import load_embedder  # noqa: E402
from ml.judging import JudgeRequest, Verdict  # noqa: E402
from ml.judging.local import LocalJudge  # noqa: E402
from ml.prompting import DECLINE  # noqa: E402

_STARTED = time.perf_counter()
SPACING = 7  # "a different question": the answerable question this many places on


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


def show(label: str, value: object) -> None:
    print(f"{label:30s} {value}")


def cut_mid_sentence(text: str, share: float = 0.6) -> str:
    cut = text[: int(len(text) * share)].rstrip()
    while cut and cut[-1] in ".!?":
        cut = cut[:-2].rstrip()
    return cut


def build_items(rows: list[dict]) -> list[tuple[dict, str, int, JudgeRequest]]:
    """(question row, check name, quality level, request) for every response."""
    answerable = [row for row in rows if row["answerable"]]
    items = []
    for index, row in enumerate(rows):
        if row["answerable"]:
            other = answerable[(answerable.index(row) + SPACING) % len(answerable)]
        else:
            other = answerable[(index * SPACING) % len(answerable)]
        reference = row["reference_answer"]
        responses = [
            ("reference", 3, reference),
            ("cut", 2, cut_mid_sentence(reference)),
            ("refusal", 1, DECLINE) if row["answerable"] else ("refusal_uncovered", 3, DECLINE),
            ("other", 0, other["reference_answer"])
            if row["answerable"]
            else ("answer_uncovered", 0, other["reference_answer"]),
        ]
        for check, level, response in responses:
            request = JudgeRequest(
                question=row["question"],
                response=response,
                reference=reference,
                key_facts=tuple(row["key_facts"]),
                passages=(row["quote"],) if row["quote"] else (),
                answerable=row["answerable"],
                custom_id=f"{row['id']}-{check}",
            )
            items.append((row, check, level, request))
    return items


def ordering(items: list[tuple[dict, str, int, JudgeRequest]], scores: list[float]) -> tuple:
    """(violations, ties) over pairs of responses to the same question at different levels."""
    violations = ties = 0
    by_question: dict[str, list[tuple[int, float]]] = {}
    for (row, _, level, _), score in zip(items, scores, strict=True):
        by_question.setdefault(row["id"], []).append((level, score))
    for pairs in by_question.values():
        for (level_a, score_a), (level_b, score_b) in itertools.combinations(pairs, 2):
            if level_a == level_b:
                continue
            (_, high), (_, low) = sorted([(level_a, score_a), (level_b, score_b)], reverse=True)
            violations += high < low
            ties += high == low
    return violations, ties


def spread(values: list[float]) -> str:
    return f"{statistics.fmean(values):.2f} ({min(values):.1f}-{max(values):.1f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [json.loads(line) for line in SAMPLE_QA.read_text(encoding="utf-8").splitlines() if line]

    progress("loading the embedder")
    started = time.perf_counter()
    judge = LocalJudge(load_embedder())
    load_s = time.perf_counter() - started
    items = build_items(rows)
    requests = [request for *_, request in items]
    judge.judge_many(requests[:4])  # warm-up: the first forward pass pays one-off costs

    progress(f"judging {len(items)} responses in one call")
    started = time.perf_counter()
    outcomes = judge.judge_many(requests)
    batch_s = time.perf_counter() - started
    verdicts = [o for o in outcomes if isinstance(o, Verdict)]
    if len(verdicts) != len(outcomes):
        raise SystemExit("the local judge returned an error for some items")
    progress("judging them again one at a time")
    started = time.perf_counter()
    singles = [judge.judge(request) for request in requests]
    single_s = time.perf_counter() - started
    differing = sum(a.score != b.score for a, b in zip(verdicts, singles, strict=True))

    scores = [v.score for v in verdicts]
    levels = [float(level) for _, _, level, _ in items]
    rho = spearman(scores, levels)
    violations, ties = ordering(items, scores)
    per_level = {
        level: [s for s, (_, _, lv, _) in zip(scores, items, strict=True) if lv == level]
        for level in (3, 2, 1, 0)
    }
    per_check: dict[str, list[float]] = {}
    for score, (_, check, _, _) in zip(scores, items, strict=True):
        per_check.setdefault(check, []).append(score)
    cut_below = sum(
        scores[i + 1] < scores[i] for i in range(0, len(items), 4)
    )  # each question's cut response against its own reference

    figures = {
        "questions": len(rows),
        "items": len(items),
        "spearman": rho,
        "mean_per_level": {str(k): statistics.fmean(v) for k, v in per_level.items()},
        "per_check": {
            check: {"mean": statistics.fmean(v), "min": min(v), "max": max(v), "n": len(v)}
            for check, v in per_check.items()
        },
        "ordering_violations": violations,
        "ordering_ties": ties,
        "cut_below_reference": cut_below,
        "embedder_load_s": load_s,
        "items_per_s_batch": len(items) / batch_s,
        "items_per_s_single": len(items) / single_s,
        "single_vs_batch_score_differences": differing,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    show("questions / responses", f"{len(rows)} / {len(items)}")
    show("Spearman rho (score, level)", f"{rho:.3f}" if rho is not None else "undefined")
    for level, values in per_level.items():
        show(f"level {level} mean (min-max)", spread(values))
    for check, values in per_check.items():
        show(f"  {check}", spread(values))
    show("ordering violations / ties", f"{violations} / {ties}")
    show("cut scored below reference", f"{cut_below} of {len(rows)}")
    show("embedder load", f"{load_s:.1f} s")
    show("throughput, one call", f"{len(items) / batch_s:.0f} items/s")
    show("throughput, one at a time", f"{len(items) / single_s:.0f} items/s")
    show("single vs batch differences", differing)


if __name__ == "__main__":
    main()
