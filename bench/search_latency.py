"""Hybrid search latency and HNSW recall on a 100,000-chunk library.

The four shared documents give real passages and embeddings; the rest of the 100k rows are
synthesised from them (each vector a noisy mix of two real ones, each text a few real
sentences), bulk-loaded with COPY, and the HNSW index is built afterwards. A library that
already holds 100k searchable chunks is reused. 200 queries (the 40 sample questions and
160 phrases cut from passages) are timed through search_chunks with precomputed vectors
(target p95 <= 50 ms), then end to end with the query embedded too. Recall@10 of the HNSW
scan against an exact scan is measured at the ef_search that search uses (target >= 0.95).

    .venv/bin/python bench/search_latency.py
"""

from __future__ import annotations

import os
import random
import statistics
from collections.abc import Sequence
from functools import partial
from pathlib import Path

# Its own runtime folder, so no other benchmark's library is emptied or mixed in.
os.environ.setdefault(
    "PORTAL_VAR_DIR",
    str(Path(__file__).resolve().parents[1] / "var" / "bench" / "search"),
)
from _common import (
    ADA_MD,
    CORPUS_PDFS,
    HSG150,
    ensure_ingested,
    latency_summary,
    load_qa,
    migrate,
    percentile,
    progress,
    searchable_chunks,
    show,
    timed,
    verdict,
)
from _synthetic import build_library, library_ready, sentences_of
from django.conf import settings
from django.db import connection, transaction

from apps.documents import selectors
from apps.documents.embedding import get_embedder
from apps.documents.models import Chunk

REAL_FILES = [*CORPUS_PDFS, HSG150, ADA_MD]
PHRASES = 160
TARGET_P95_MS, TARGET_RECALL = 50.0, 0.95
EF_SEARCH = max(settings.SEARCH_EF_SEARCH, selectors.CANDIDATES)  # what search_chunks sets
KNN_SQL = "SELECT id FROM documents_chunk WHERE searchable ORDER BY embedding <=> %s::vector"


def make_queries() -> tuple[list[str], list[str]]:
    """The sample questions, and phrases cut from the start of real passages' sentences."""
    questions = [str(item["question"]) for item in load_qa()]
    real = Chunk.objects.filter(
        document__filename__in=[p.name for p in REAL_FILES], searchable=True
    )
    texts = real.order_by("id").values_list("text", flat=True)
    sentences = [s for s in sentences_of(texts) if s[0].isupper()]
    pick = random.Random(11)
    phrases = [" ".join(s.split()[: pick.randint(5, 12)]) for s in pick.sample(sentences, PHRASES)]
    return questions, [p.rstrip(".,;:") for p in phrases]


def knn(vector: str, k: int, *, exact: bool, ef_search: int = EF_SEARCH, explain: str = "") -> list:
    """The k nearest searchable chunks' ids by the HNSW index, or (exact) by a full scan."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")  # as search_chunks
        if exact:
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"{explain} {KNN_SQL} LIMIT %s", [vector, k])
        return [row[0] for row in cursor.fetchall()]


def plan_summary(vector: str, *, exact: bool) -> str:
    """The k-NN query plan's top node and its first scan, costs left out."""
    plan = knn(vector, 10, exact=exact, explain="EXPLAIN")
    lines = [line.split("  (cost")[0].strip() for line in plan]
    return " ... ".join([lines[0], next(line for line in lines if "Scan" in line)])


def explain_search(query: str, vector: Sequence[float]) -> str:
    """Where EXPLAIN ANALYZE of search_chunks' SQL says the time of one query goes."""
    sql, params = selectors.search_statement(query=query, vector=vector, k=10)
    with transaction.atomic(), connection.cursor() as cursor:
        selectors.search_session(cursor)
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        analyzed = cursor.fetchone()[0][0]

    def nodes(node: dict) -> list[dict]:
        return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]

    plan = nodes(analyzed["Plan"])
    ms = {n["Alias"]: n["Actual Total Time"] for n in plan if "Alias" in n}
    heap = sum(
        n["Actual Rows"] * n["Actual Loops"] for n in plan if "Bitmap Heap" in n["Node Type"]
    )
    return (
        f"execution {analyzed['Execution Time']:.1f} ms: vector side {ms['vector_hits']:.1f} ms, "
        f"text side {ms['text_hits']:.1f} ms ({heap:.0f} rows fetched by bitmap heap scans)"
    )


def main() -> None:
    migrate()
    ensure_ingested(REAL_FILES)
    if library_ready():
        progress("reusing the 100k-chunk library already in the bench database")
    else:
        build_library()
    questions, phrases = make_queries()
    queries, n = questions + phrases, len(questions)
    embedder = get_embedder()
    embedder.embed(["warm-up"])
    vectors: list[Sequence[float]] = []

    def embed_one(query: str) -> None:
        vectors.append(embedder.embed([query])[0])

    embed_ms = [timed(partial(embed_one, q)) for q in queries]
    progress(f"{len(queries)} queries embedded; timing search")
    pairs = list(zip(queries, vectors, strict=True))
    # One untimed pass over every query first: a serving database has its index and hot
    # rows in memory, a freshly started one reads them from disk on the first queries.
    for query, vector in pairs:
        selectors.search_chunks(query=query, k=10, query_vector=vector)
    sql_ms = [
        timed(partial(selectors.search_chunks, query=q, k=10, query_vector=v)) for q, v in pairs
    ]
    e2e_ms = [timed(partial(selectors.search_chunks, query=q, k=10)) for q in queries]

    progress("measuring HNSW recall against exact search")
    literals = [selectors._vector_literal(v) for v in vectors]
    recall: dict[str, list[float]] = {"10": [], "50": [], "10@200": [], "10@400": []}
    for literal in literals:
        truth = knn(literal, 50, exact=True)
        recall["50"].append(len(set(knn(literal, 50, exact=False)) & set(truth)) / 50)
        for key, ef in (("10", EF_SEARCH), ("10@200", 200), ("10@400", 400)):
            found = knn(literal, 10, exact=False, ef_search=ef)
            recall[key].append(len(set(found) & set(truth[:10])) / 10)
    ann_plan, exact_plan = (plan_summary(literals[0], exact=exact) for exact in (False, True))
    slowest = max(range(len(queries)), key=sql_ms.__getitem__)

    show("searchable chunks", searchable_chunks())
    show("queries", f"{len(queries)} ({n} sample questions + {len(phrases)} passage phrases), k=10")
    show("search_chunks, vector given", latency_summary(sql_ms))
    show("  sample questions", latency_summary(sql_ms[:n]))
    show("  passage phrases", latency_summary(sql_ms[n:]))
    show("query embedding alone", latency_summary(embed_ms))
    show("search_chunks end to end", latency_summary(e2e_ms))
    p95 = percentile(sql_ms, 95)
    show("p95 target <= 50 ms", f"{p95:.1f} ms  {verdict(p95 <= TARGET_P95_MS)}")
    show("slowest query", repr(queries[slowest]))
    show("  EXPLAIN ANALYZE", explain_search(queries[slowest], vectors[slowest]))
    show("ANN plan", ann_plan)
    show("exact plan", exact_plan)
    if "chunk_embedding_hnsw" not in ann_plan or "Seq Scan" not in exact_plan:
        print("WARNING: the ANN query skips chunk_embedding_hnsw or the exact one is no Seq Scan")
    mean = {key: statistics.fmean(values) for key, values in recall.items()}
    ok = verdict(mean["10"] >= TARGET_RECALL)
    show(f"recall@10 ef_search={EF_SEARCH}", f"{mean['10']:.4f}  (target >= {TARGET_RECALL})  {ok}")
    by_set = [statistics.fmean(recall["10"][:n]), statistics.fmean(recall["10"][n:])]
    show("  sample questions / phrases", f"{by_set[0]:.4f} / {by_set[1]:.4f}")
    show("  worst single query", f"{min(recall['10']):.2f}")
    show("  at ef_search=200 / 400", f"{mean['10@200']:.4f} / {mean['10@400']:.4f}")
    show(f"recall@50 ef_search={EF_SEARCH}", f"{mean['50']:.4f}  (the candidates search fuses)")


if __name__ == "__main__":
    main()
