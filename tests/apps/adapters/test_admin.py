"""Serving from the admin: only users allowed to change the served row may serve or roll
back, and a rollback undoes the change that was selected or nothing."""

from __future__ import annotations

import pytest

from apps.adapters.models import AdapterVersion, ServedAdapter, ServingChange
from apps.adapters.services import adapter_promote
from tests import support

pytestmark = pytest.mark.django_db

SERVE = "adapters.change_servedadapter"
ADAPTERS = "admin:adapters_adapterversion_changelist"
CHANGES = "admin:adapters_servingchange_changelist"


def _adapter(version: str) -> AdapterVersion:
    return AdapterVersion.objects.create(
        version=version, path=f"/nowhere/{version}", base_model="tiny", checksum="0" * 64
    )


def _served() -> str:
    row = ServedAdapter.objects.filter(pk=ServedAdapter.SINGLETON_ID).first()
    return "base" if row is None else row.version


def test_viewing_adapters_is_not_enough_to_serve_one():
    adapter = _adapter("sft-1")
    viewer = support.staff_client("adapters.view_adapterversion")
    assert "serve" not in support.admin_actions_offered(viewer, ADAPTERS)
    support.admin_action(viewer, ADAPTERS, "serve", [adapter.pk])
    assert _served() == "base" and not ServingChange.objects.exists()

    server = support.staff_client("adapters.view_adapterversion", SERVE)
    assert "serve" in support.admin_actions_offered(server, ADAPTERS)
    assert "now served" in support.admin_action(server, ADAPTERS, "serve", [adapter.pk])
    assert _served() == "sft-1"


def test_viewing_the_history_is_not_enough_to_roll_back():
    _adapter("sft-1"), _adapter("sft-2")
    adapter_promote(version="sft-1"), adapter_promote(version="sft-2")
    viewer = support.staff_client("adapters.view_servingchange")
    assert "rollback" not in support.admin_actions_offered(viewer, CHANGES)
    support.admin_action(viewer, CHANGES, "rollback", [ServingChange.objects.first().pk])
    assert _served() == "sft-2" and ServingChange.objects.count() == 2


def test_rollback_undoes_the_selected_change_or_refuses():
    _adapter("sft-1"), _adapter("sft-2")
    adapter_promote(version="sft-1"), adapter_promote(version="sft-2")
    latest, older = ServingChange.objects.all()
    operator = support.staff_client("adapters.view_servingchange", SERVE)

    both = support.admin_action(operator, CHANGES, "rollback", [latest.pk, older.pk])
    assert "exactly one" in both
    assert "not the latest" in support.admin_action(operator, CHANGES, "rollback", [older.pk])
    assert _served() == "sft-2" and ServingChange.objects.count() == 2

    done = support.admin_action(operator, CHANGES, "rollback", [latest.pk])
    assert "now serving sft-1" in done
    assert _served() == "sft-1"
    assert ServingChange.objects.first().reason == "rollback of sft-2"


def test_the_rollback_service_undoes_only_the_change_it_was_given_while_it_is_the_latest():
    from apps.adapters.services import RollbackRefused, adapter_rollback

    with pytest.raises(RollbackRefused, match="never changed"):
        adapter_rollback()
    _adapter("sft-1"), _adapter("sft-2")
    adapter_promote(version="sft-1")
    chosen = ServingChange.objects.first()  # base -> sft-1, the latest when it was chosen
    adapter_promote(version="sft-2")  # another promotion lands before the rollback runs
    with pytest.raises(RollbackRefused, match="not the latest"):
        adapter_rollback(change_id=chosen.pk)
    assert _served() == "sft-2" and ServingChange.objects.count() == 2
    assert adapter_rollback(change_id=ServingChange.objects.first().pk).version == "sft-1"
