from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from apps.accounts.decorators import sme_required
from apps.training import selectors
from apps.training.models import DataSnapshot, Evaluation, LoopRun, TrainingRun
from apps.training.presenters import comparison_context, run_context


@sme_required
def index(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "training/index.html",
        {
            "runs": selectors.runs_recent(),
            "loops": selectors.loops_recent(),
            "evaluations": Evaluation.objects.order_by("-created_at")[:20],
            "snapshots": DataSnapshot.objects.order_by("-created_at")[:10],
        },
    )


@sme_required
def snapshot_file(request: HttpRequest, snapshot_id: int) -> FileResponse:
    """A snapshot's JSON Lines, in the shape TRL reads (prompt / chosen / rejected, or
    prompt / completion)."""
    snapshot = get_object_or_404(DataSnapshot, pk=snapshot_id)
    path = Path(snapshot.path)
    if not path.is_file():
        raise Http404("This snapshot's file is gone from the server.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"{snapshot.label}.jsonl")


@sme_required
def run(request: HttpRequest, run_id: int) -> HttpResponse:
    return render(
        request, "training/run.html", run_context(get_object_or_404(TrainingRun, pk=run_id))
    )


@sme_required
def compare(request: HttpRequest, served_id: int, candidate_id: int) -> HttpResponse:
    served = get_object_or_404(Evaluation, pk=served_id)
    candidate = get_object_or_404(Evaluation, pk=candidate_id)
    return render(request, "training/compare.html", comparison_context(served, candidate))


@sme_required
def loop(request: HttpRequest, loop_id: int) -> HttpResponse:
    loop = get_object_or_404(LoopRun, pk=loop_id)
    context: dict[str, object] = {"loop": loop}
    evaluations = {
        s["step"]: s["result"].get("evaluation")
        for s in loop.steps
        if isinstance(s.get("result"), dict)
    }
    served_id, candidate_id = (
        evaluations.get("evaluate_served"),
        evaluations.get("evaluate_candidate"),
    )
    if served_id and candidate_id:
        context.update(
            comparison_context(
                Evaluation.objects.get(pk=served_id), Evaluation.objects.get(pk=candidate_id)
            )
        )
    return render(request, "training/loop.html", context)
