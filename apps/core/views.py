from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
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
