from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

logger = logging.getLogger(__name__)


def home(request: HttpRequest) -> HttpResponse:
    return redirect("qa:ask")


@login_not_required
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the process answers and the database does too.

    Anyone may call it, so a failure says only what failed; the database's own message
    (host names, socket paths, user names) goes to the server log."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"ok": True})
    except DatabaseError:
        logger.exception("healthz: the database does not answer")
        return JsonResponse({"ok": False, "error": "database unavailable"}, status=503)
