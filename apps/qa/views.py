from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import closing

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from apps.accounts.signed_in import AuthenticatedHttpRequest
from apps.feedback.services import InvalidFeedback, feedback_submit
from apps.qa import selectors, services
from apps.qa.forms import FeedbackForm, QuestionForm
from apps.qa.models import Answer, Conversation
from apps.qa.presenters import answer_json, evidence_json


def _question_form(conversation: Conversation | None = None) -> QuestionForm:
    return QuestionForm(
        initial={
            "client_token": uuid.uuid4().hex,
            "conversation": conversation.pk if conversation else None,
        }
    )


@require_http_methods(["GET", "POST"])
def ask(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = QuestionForm(request.POST)
        if form.is_valid():
            try:
                answer = services.question_submit(
                    question=form.cleaned_data["question"],
                    user=request.user,
                    session_key=request.session.session_key or "",
                    conversation_id=form.cleaned_data["conversation"],
                    client_token=form.cleaned_data["client_token"] or None,
                )
            except services.InvalidQuestion as exc:
                form.add_error("question", str(exc))
            else:
                return redirect(_answer_url(answer))
        return render(request, "qa/ask.html", _page(request, None, form), status=400)
    return render(request, "qa/ask.html", _page(request, None, _question_form()))


@require_GET
def conversation(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    convo = get_object_or_404(Conversation, pk=pk, user=request.user)
    return render(request, "qa/ask.html", _page(request, convo, _question_form(convo)))


def _page(
    request: AuthenticatedHttpRequest, convo: Conversation | None, form: QuestionForm
) -> dict[str, object]:
    return {
        "form": form,
        "conversation": convo,
        "answers": selectors.conversation_answers(convo, request.user) if convo else [],
        "conversations": selectors.conversations_for(request.user)[:30],
        "feedback_form": FeedbackForm(),
    }


def _own_answer(request: AuthenticatedHttpRequest, pk: int) -> Answer:
    answer = selectors.answer_for(request.user, pk)
    if answer is None:
        raise Http404
    return answer


def _answer_url(answer: Answer) -> str:
    return f"{reverse('qa:conversation', args=[answer.conversation_id])}#answer-{answer.pk}"


@require_GET
def answer_stream(request: AuthenticatedHttpRequest, pk: int) -> StreamingHttpResponse:
    """Server-sent events: ``token`` pieces while the model writes, then ``done`` with the
    finished answer block (citations, resources, feedback form) rendered by the server."""
    answer = _own_answer(request, pk)

    def events() -> Iterator[str]:
        # closing(): a client that goes away closes the service's stream at once, which then
        # finishes and stores the answer without it.
        with closing(services.answer_stream(answer_id=answer.pk)) as stream:
            yield from _sse(request, stream)

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must pass each event on at once
    return response


def _sse(
    request: HttpRequest, stream: Iterator[services.Token | services.Finished]
) -> Iterator[str]:
    for event in stream:
        if isinstance(event, services.Token):
            yield f"event: token\ndata: {json.dumps({'text': event.text})}\n\n"
        else:
            html = render_to_string(
                "qa/_answer_body.html",
                {
                    "answer": event.answer,
                    "feedback_form": FeedbackForm(),
                    "my_feedback": None,
                    "waited": True,  # still generating: being written elsewhere
                },
                request=request,
            )
            done = {
                "status": event.answer.status,
                "html": html,
                "evidence": evidence_json(event.answer),
            }
            yield f"event: done\ndata: {json.dumps(done)}\n\n"


@require_POST
def answer_generate(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """The fallback without JavaScript: generate the whole answer, then show the page."""
    answer = _own_answer(request, pk)
    services.answer_generate(answer_id=answer.pk)
    return redirect(_answer_url(answer))


@require_POST
def answer_retry(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    answer = _own_answer(request, pk)
    if not services.answer_retry(answer_id=answer.pk):
        messages.info(
            request, "That answer is still being written or already finished; reload to see it."
        )
    return redirect(_answer_url(answer))


@require_POST
def feedback(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    answer = _own_answer(request, pk)
    form = FeedbackForm(request.POST)
    target = _answer_url(answer)
    if not form.is_valid():
        messages.error(
            request, "Choose one of the five levels, from strongly disagree to strongly agree."
        )
        return redirect(target)
    try:
        feedback_submit(
            answer_id=answer.pk,
            user=request.user,
            session_key=request.session.session_key or "",
            **form.cleaned_data,
        )
    except InvalidFeedback as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Thank you: your feedback is saved.")
    return redirect(target)


@require_POST
def api_ask(request: AuthenticatedHttpRequest) -> JsonResponse:
    """JSON in, JSON out: ``{"question": ...}`` -> the same object ``manage.py ask --json`` prints."""
    try:
        payload = json.loads(request.body or b"{}")
        question = str(payload.get("question", ""))
    except (ValueError, AttributeError):
        return JsonResponse({"error": "send a JSON object with a question"}, status=400)
    try:
        answer = services.question_submit(
            question=question, user=request.user, session_key=request.session.session_key or ""
        )
    except services.InvalidQuestion as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    answer = services.answer_generate(answer_id=answer.pk)
    status = 200 if answer.status == Answer.Status.DONE else 503
    return JsonResponse(answer_json(answer), status=status)
