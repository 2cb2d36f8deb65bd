"""Answer quality and speed on ../shared/eval/sample-qa.jsonl with the served generator.

Prints: citation accuracy (the answer cites the gold page), key-fact recall, the share of
unanswerable questions correctly declined (and of answerable ones wrongly declined), the
latency split (retrieve / first token / generate / total), the answer latency p50 / p95
(target: p50 <= 2 s), the portal's overhead (all but the model's own work) as a share of
answer time (target <= 10%), and adapter swap times on the served generator, whichever
backend GENERATOR_BACKEND names (llama.cpp by default).

Runs in its own folder (var/bench/answers) so the synthetic rows of search_latency.py do not
become answer passages; with PORTAL_VAR_DIR set it measures that instance instead (after
``run_loop --algorithm sft``, say) and ``--adapter`` names what answers: ``served`` (the
default), ``base`` or a version. It also judges each answer against the sample reference
(the configured judge: local by default) for the mean AI score with its 95% bootstrap
interval, and the semantic similarity of answer and reference: on the answerable questions
(the embedder puts a right decline at about 0.17 from a reference that explains why the
documents do not say, below a wrong answer on the same topic; declines are counted apart),
and over all of them as before 2026-12-03.

Usage: bench/answer_quality.py [--limit N] [--max-new-tokens N] [--adapter V] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("PORTAL_VAR_DIR", str(REPO / "var" / "bench" / "answers"))
os.environ.setdefault("ADAPTER_WATCH", "false")
sys.path.insert(0, str(REPO / "bench"))

from _common import (  # noqa: E402
    CORPUS_PDFS,
    ensure_ingested,
    load_qa,
    migrate,
    percentile,
    progress,
    show,
    verdict,
)
from django.conf import settings  # noqa: E402

from apps.adapters.selectors import served_target  # noqa: E402
from apps.answering import engine  # noqa: E402
from apps.qa import services  # noqa: E402
from apps.qa.models import Answer, Origin  # noqa: E402
from ml.generator import Generator  # noqa: E402


def _norm(text: str) -> str:
    return " ".join(text.lower().replace("°", " ").replace("-", " ").split())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="first N questions only")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--adapter", default="served", help="served, base or a version")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    settings.GENERATION_MAX_NEW_TOKENS = args.max_new_tokens
    migrate()
    documents = {d.filename: d for d in ensure_ingested(CORPUS_PDFS)}
    progress("preparing and loading the answer model")
    generator = engine.get_generator(watch=False)
    progress(
        f"generator: {settings.GENERATOR_BACKEND} ({type(generator).__name__}, "
        f"{generator.model_name}), serving {generator.served_adapter}"
    )
    rows = load_qa()[: args.limit or None]
    adapter = served_target().version if args.adapter == "served" else args.adapter
    progress(f"answering with adapter {adapter}")

    answers: list[tuple[dict, Answer]] = []
    with engine.using_adapter(adapter):
        for number, row in enumerate(rows, start=1):
            # Not a user's question, so nothing is queued for the judge (no broker here).
            answer = services.question_submit(
                question=str(row["question"]),
                user=None,
                session_key="bench",
                origin=Origin.EVALUATION,
            )
            answers.append((row, services.answer_generate(answer_id=answer.pk)))
            progress(f"{number}/{len(rows)} {row['id']}: {answers[-1][1].text[:70]!r}")
    judged = _judged(answers)

    answerable = [(r, a) for r, a in answers if r["answerable"]]
    unanswerable = [(r, a) for r, a in answers if not r["answerable"]]
    cited = sum(
        any(
            c["page"] == r["page"] and c["document_id"] == documents[r["document"]].pk
            for c in a.citations
        )
        for r, a in answerable
    )
    given = sum(
        any(
            p["page"] == r["page"] and p["document_id"] == documents[r["document"]].pk
            for p in a.retrieved
        )
        for r, a in answerable
    )
    recall = statistics.fmean(
        sum(_norm(f) in _norm(a.text) for f in r["key_facts"]) / len(r["key_facts"])
        for r, a in answerable
    )
    declined_right = sum(a.declined for _, a in unanswerable)
    declined_wrong = sum(a.declined for _, a in answerable)
    generated = [a for _, a in answers if a.generate_ms]
    overhead = [_ms(a.total_ms) - _ms(a.generate_ms) for a in generated]
    share = sum(overhead) / sum(_ms(a.total_ms) for a in generated) if generated else float("nan")

    swap = _adapter_swaps(generator)
    figures: dict[str, Any] = {  # printed as JSON
        "questions": len(answers),
        "citation_accuracy": cited / len(answerable),
        "gold_page_in_passages": given / len(answerable),
        "key_fact_recall": recall,
        "unanswerable_declined": declined_right / max(1, len(unanswerable)),
        "answerable_wrongly_declined": declined_wrong / len(answerable),
        "retrieve_ms_p50": percentile([_ms(a.retrieve_ms) for _, a in answers], 50),
        "first_token_ms_p50": percentile([_ms(a.first_token_ms) for a in generated], 50),
        "generate_ms_p50": percentile([_ms(a.generate_ms) for a in generated], 50),
        "total_ms_p50": percentile([_ms(a.total_ms) for _, a in answers], 50),
        "total_ms_p95": percentile([_ms(a.total_ms) for _, a in answers], 95),
        "overhead_ms_p50": percentile(overhead, 50),
        "overhead_share": share,
        "tokens_per_s": sum(a.completion_tokens or 0 for a in generated)
        / (sum(_ms(a.generate_ms) for a in generated) / 1000),
        **judged,
        **swap,
    }
    show(
        "generator",
        f"{settings.GENERATOR_BACKEND} ({type(generator).__name__}, {generator.model_name})",
    )
    show(
        "questions",
        f"{len(answers)} ({len(answerable)} answerable), max {args.max_new_tokens} new tokens",
    )
    show(
        "citation accuracy",
        f"{figures['citation_accuracy']:.3f}  (gold page among the passages given: {figures['gold_page_in_passages']:.3f})",
    )
    show("key-fact recall", f"{recall:.3f}  target >= 0.45  {verdict(recall >= 0.45)}")
    show(
        "semantic similarity",
        f"{judged['semantic_similarity']:.3f} to the reference on the answerable questions  "
        f"target >= 0.70  {verdict(judged['semantic_similarity'] >= 0.70)}  "
        f"(all questions: {judged['semantic_similarity_all']:.3f})",
    )
    show(
        "mean AI score",
        f"{judged['ai_score_mean']:.2f} / 5, 95% interval {judged['ai_score_low']:.2f}-"
        f"{judged['ai_score_high']:.2f} ({judged['judge']})  target >= 3.0  "
        f"{verdict(judged['ai_score_mean'] >= 3.0)}",
    )
    show(
        "unanswerable declined",
        f"{declined_right}/{len(unanswerable)}  (answerable wrongly declined: {declined_wrong}/{len(answerable)})",
    )
    show(
        "latency p50 (ms)",
        f"retrieve {figures['retrieve_ms_p50']:.0f} | first token {figures['first_token_ms_p50']:.0f} | generate {figures['generate_ms_p50']:.0f} | total {figures['total_ms_p50']:.0f} (p95 {figures['total_ms_p95']:.0f})",
    )
    show(
        "answer latency (total)",
        f"p50 {figures['total_ms_p50'] / 1000:.2f} s  p95 {figures['total_ms_p95'] / 1000:.2f} s  "
        f"target p50 <= 2 s  {verdict(figures['total_ms_p50'] <= 2000)}",
    )
    show("generation speed", f"{figures['tokens_per_s']:.1f} tokens/s")
    show(
        "portal overhead",
        f"{share:.1%} of answer time, p50 {figures['overhead_ms_p50']:.0f} ms  target <= 10%  {verdict(share <= 0.10)}",
    )
    show(
        "adapter swap (ms)",
        ", ".join(f"{k.removeprefix('swap_')} {v:.0f}" for k, v in swap.items()),
    )
    if args.json:
        print(json.dumps(figures))


def _ms(value: float | None) -> float:
    """A finished answer's timing, which it always has (None fails, as arithmetic on it did)."""
    if value is None:
        raise TypeError("a finished answer without its timings")
    return value


class Judged(TypedDict):
    judge: str
    ai_score_mean: float
    ai_score_low: float
    ai_score_high: float
    semantic_similarity: float  # over the answerable questions (declines are counted apart)
    semantic_similarity_all: float  # over every question, a right decline at about 0.17


def _judged(answers: list[tuple[dict, Answer]]) -> Judged:
    """The judge's mean score of the answers against the sample references, with its 95%
    bootstrap interval, and the mean cosine of answer and reference (the embedder's)."""
    from apps.documents.embedding import get_embedder
    from apps.judging.judge import get_judge
    from apps.judging.services import judge_request
    from apps.references.models import Reference
    from ml.embeddings import answer_similarity
    from ml.stats import bootstrap_interval

    judge, embedder = get_judge(), get_embedder()
    scores, similarity, answerable = [], [], []
    for row, answer in answers:
        reference = Reference(
            question=str(row["question"]),
            answer=str(row["reference_answer"]),
            answerable=bool(row["answerable"]),
            key_facts=list(row.get("key_facts") or []),
        )
        request = judge_request(
            question=reference.question,
            response=answer.text,
            retrieved=answer.retrieved,
            reference=reference,
        )
        scores.append(judge.judge(request).score)
        similarity.append(answer_similarity(embedder, answer.text, reference.answer))
        answerable.append(reference.answerable)
    low, high = bootstrap_interval(scores) or (float("nan"), float("nan"))
    return {
        "judge": judge.version,
        "ai_score_mean": statistics.fmean(scores),
        "ai_score_low": low,
        "ai_score_high": high,
        "semantic_similarity": statistics.fmean(
            s for s, a in zip(similarity, answerable, strict=True) if a
        ),
        "semantic_similarity_all": statistics.fmean(similarity),
    }


def _adapter_swaps(generator: Generator) -> dict[str, float]:
    """Milliseconds to verify and load a new adapter, to switch between loaded ones, and to
    go back to the base model, on random LoRA adapters of the served base model (made on
    its HF folder; each carries its GGUF LoRA too, so any backend can load it)."""
    sys.path.insert(0, str(REPO))
    from ml import adapters
    from tests.support import make_adapter

    folder = Path(tempfile.mkdtemp(prefix="swap-", dir=settings.VAR_DIR))
    one, two = (
        make_adapter(engine.hf_model_path(), folder, f"bench-{seed}", seed=seed) for seed in (1, 2)
    )
    checksums = {path: adapters.read_manifest(path).checksum for path in (one, two)}
    timings: dict[str, float] = {}

    def clock(name: str, action) -> None:
        started = time.perf_counter()
        action()
        timings[name] = (time.perf_counter() - started) * 1000

    clock("swap_verify_manifest", lambda: adapters.verify(two, expected_checksum=checksums[two]))
    clock("swap_first_adapter", lambda: generator.activate("bench-1", one, checksums[one]))
    clock("swap_load_new", lambda: generator.activate("bench-2", two, checksums[two]))
    clock("swap_to_loaded", lambda: generator.activate("bench-1", one, checksums[one]))
    clock("swap_to_base", lambda: generator.activate(adapters.BASE, None, None))
    adapters.discard(folder)
    return timings


if __name__ == "__main__":
    main()
