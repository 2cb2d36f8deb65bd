"""Changing the rubric LLM judges use needs the permission to change rubrics."""

from __future__ import annotations

import pytest

from apps.judging.models import JudgeRubric
from tests import support

pytestmark = pytest.mark.django_db

RUBRICS = "admin:judging_judgerubric_changelist"


def _active() -> list[str]:
    return list(JudgeRubric.objects.filter(is_active=True).values_list("version", flat=True))


def test_viewing_rubrics_is_not_enough_to_activate_one():
    before = _active()
    rubric = JudgeRubric.objects.create(version="strict-v9", text="Score 0 unless exact.")
    viewer = support.staff_client("judging.view_judgerubric")
    assert "activate" not in support.admin_actions_offered(viewer, RUBRICS)
    support.admin_action(viewer, RUBRICS, "activate", [rubric.pk])
    assert _active() == before

    editor = support.staff_client("judging.view_judgerubric", "judging.change_judgerubric")
    assert "activated" in support.admin_action(editor, RUBRICS, "activate", [rubric.pk])
    assert _active() == ["strict-v9"]
