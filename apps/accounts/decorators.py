from __future__ import annotations

from django.contrib.auth.decorators import user_passes_test

from apps.accounts.roles import is_sme

sme_required = user_passes_test(is_sme)
