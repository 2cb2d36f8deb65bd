"""Retrieval quality on the sample questions: is the gold page among the top hits?

For each answerable question of shared/eval/sample-qa.jsonl, runs search_chunks(k=5) over
the whole bench library and checks whether the gold (file name, page) is among the hits.
Prints top-1, top-3 and top-5 hit rates and the misses; the target is top-5 >= 0.90. The
two demo-corpus PDFs are ingested first when missing; whatever else the bench library holds
(the other shared documents, the 100k synthetic rows of search_latency) is searched too.

    .venv/bin/python bench/retrieval_eval.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

# Its own runtime folder, so no other benchmark's library is emptied or mixed in.
os.environ.setdefault(
    "PORTAL_VAR_DIR",
    str(Path(__file__).resolve().parents[1] / "var" / "bench" / "search"),
)
from _common import CORPUS_PDFS, ensure_ingested, load_qa, migrate, searchable_chunks, show, verdict

from apps.documents.models import Document
from apps.documents.selectors import search_chunks

TARGET_TOP5 = 0.90
DEPTHS = (1, 3, 5)


def short(filename: str) -> str:
    """HUD_NSPIRE_Standards_v2.1_HVAC.pdf -> HUD: enough to tell the documents apart."""
    return filename.split("_")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    migrate()
    ensure_ingested(CORPUS_PDFS)
    documents = Document.objects.filter(is_current=True, status=Document.Status.READY)
    questions = [item for item in load_qa() if item["answerable"]]

    hits = dict.fromkeys(DEPTHS, 0)
    misses = []
    for item in questions:
        gold = (item["document"], item["page"])
        results = search_chunks(query=item["question"], k=5)
        found = [(hit.filename, hit.page_number) for hit in results]
        rank = found.index(gold) + 1 if gold in found else None
        for depth in DEPTHS:
            hits[depth] += rank is not None and rank <= depth
        if rank is None:
            misses.append((item, found))

    rates = {f"top{depth}": round(hits[depth] / len(questions), 4) for depth in DEPTHS}
    show("searchable chunks", f"{searchable_chunks()} in {documents.count()} documents")
    show("answerable questions", len(questions))
    for depth in DEPTHS:
        rate = rates[f"top{depth}"]
        show(f"top-{depth} hit rate", f"{rate:.3f}  ({hits[depth]}/{len(questions)})")
    show("top-5 target >= 0.90", verdict(rates["top5"] >= TARGET_TOP5))
    for item, found in misses:
        pages = ", ".join(f"{short(name)} p{page}" for name, page in found)
        print(f"  miss {item['id']}: gold {short(item['document'])} p{item['page']}; got {pages}")
        print(f"       {item['question']}")
    if args.json:
        missed = [item["id"] for item, _ in misses]
        print(json.dumps({"benchmark": "retrieval_eval", **rates, "misses": missed}))


if __name__ == "__main__":
    main()
