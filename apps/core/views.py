from __future__ import annotations

import logging
import sys

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.views import defaults
from redis.exceptions import RedisError

from portal.celery import QUEUES, redis_client, worker_heartbeat_key

logger = logging.getLogger(__name__)


def home(request: HttpRequest) -> HttpResponse:
    return redirect("qa:ask")


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and people: the database, the broker, and for each
    queue whether a worker answered within the last minute. 503 when the database or the
    broker is down; a queue without a worker is reported, not an outage of the site.

    Anyone may call it, so a failure says only what failed; the database's or broker's
    own message (host names, socket paths, user names) goes to the server log."""
    body: dict[str, object] = {"ok": True, "database": "ok", "broker": "ok"}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.exception("healthz: the database does not answer")
        body.update(ok=False, database="unavailable", error="database unavailable")
    workers: dict[str, bool] = {}
    try:
        with redis_client(timeout=1.0) as client:
            alive = client.mget([worker_heartbeat_key(queue) for queue in QUEUES])
        workers = {queue: bool(host) for queue, host in zip(QUEUES, alive, strict=True)}
    except (RedisError, OSError):
        logger.exception("healthz: the broker does not answer")
        body.update(ok=False, broker="unavailable")
        body.setdefault("error", "broker unavailable")
    body["workers"] = workers
    return JsonResponse(body, status=200 if body["ok"] else 503)


# Seconds a client is told to wait before trying again while the database does not answer.
DATABASE_RETRY_AFTER_SECONDS = 30


def server_error(request: HttpRequest) -> HttpResponse:
    """The portal's 500 handler (``handler500``). A database that does not answer (being
    restarted, or down) is an outage to wait out, not a fault of the page: 503 with
    Retry-After and a page that says so, without the database's own message. The page is
    rendered without the request, so nothing in it reaches for the database again."""
    error = sys.exc_info()[1]
    if not isinstance(error, OperationalError | InterfaceError):
        return defaults.server_error(request)
    if request.path.startswith("/ask/api/") or "json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse(
            {"error": "database unavailable", "retry_after": DATABASE_RETRY_AFTER_SECONDS},
            status=503,
        )
    else:
        page = render_to_string("503.html", {"retry_after": DATABASE_RETRY_AFTER_SECONDS})
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response
