"""Admin list filters whose value is a row id.

A value typed into the URL (``?reviewer=abc``) reaches the filter's ``queryset()``
unchecked, and Django's change list does not catch what a custom filter raises there: a
500. Django's own field filters answer a bad value by opening the list again, unfiltered,
with ``?e=1``; IdListFilter does the same, before any query is built.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.http import HttpRequest


class IdListFilter(admin.SimpleListFilter):
    """``value()`` is None or a string of ASCII digits; anything else is refused."""

    def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        value = self.value()
        if value is not None and not (value.isascii() and value.isdigit()):
            raise IncorrectLookupParameters(f"{self.parameter_name}={value!r} is not an id")
