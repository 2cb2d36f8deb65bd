"""Session keys are bearer credentials: rows remember a keyed digest of the session that
made them, admin shows neither, and keys stored before are hashed by the migrations."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from apps.accounts.sessions import session_key_digest
from apps.feedback.models import Feedback, FeedbackRevision
from apps.qa.models import Answer
from tests import support


def _viewer() -> Client:
    """A staff member who may only view answers and ratings (the attacker of issue 11)."""
    user = support.make_user("vic", staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_answer", "view_feedback"])
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_view_only_staff_member_cannot_read_anyones_session_key():
    admin_user = support.make_user("root", staff=True)
    admin_user.is_superuser = True
    admin_user.save()
    victim = Client()
    victim.force_login(admin_user)
    key = victim.session.session_key
    assert (
        victim.post("/ask/", {"question": "Forklift heat?", "client_token": "t1"}).status_code
        == 302
    )
    answer = Answer.objects.get()
    Answer.objects.filter(pk=answer.pk).update(status=Answer.Status.DONE, text="55°F [1].")
    assert victim.post(f"/ask/answers/{answer.pk}/feedback", {"score": 2}).status_code == 302
    feedback = Feedback.objects.get()
    revision = FeedbackRevision.objects.get()

    # The rows hold the digest, which still matches the session that made them.
    answer.refresh_from_db()
    assert key and answer.session_digest == feedback.session_digest == revision.session_digest
    assert answer.session_digest == session_key_digest(key) != key
    assert Answer.objects.filter(session_digest=session_key_digest(key)).get() == answer

    viewer = _viewer()
    pages = [
        viewer.get(f"/admin/qa/answer/{answer.pk}/change/"),
        viewer.get(f"/admin/feedback/feedback/{feedback.pk}/change/"),
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert key not in html and answer.session_digest not in html
        assert "session" not in html.lower().replace("sessionid", "")

    # The digest is not a key: presenting it as a session cookie logs nobody in.
    intruder = Client()
    intruder.cookies["sessionid"] = answer.session_digest
    assert intruder.get("/admin/auth/user/").status_code == 302


def test_the_digest_is_keyed_and_empty_stays_empty(settings):
    first = session_key_digest("abc")
    assert len(first) == 64 and first != session_key_digest("abd")
    assert session_key_digest("") == session_key_digest(None) == ""
    settings.SECRET_KEY = "another-instance"
    assert session_key_digest("abc") != first


@pytest.mark.django_db(transaction=True)
def test_the_migrations_hash_the_keys_stored_before():
    before = [("qa", "0003_retrieval_query_evidence"), ("feedback", "0002_review_states")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    user = old.get_model("auth", "User").objects.create(username="eve")
    conversation = old.get_model("qa", "Conversation").objects.create(title="q")
    answers = old.get_model("qa", "Answer").objects
    answer = answers.create(conversation=conversation, question="q", session_key="plainkey1")
    answers.create(conversation=conversation, question="cli", session_key="")
    feedback = old.get_model("feedback", "Feedback").objects.create(
        answer=answer, user=user, score=2, session_key="plainkey2"
    )
    old.get_model("feedback", "FeedbackRevision").objects.create(
        feedback=feedback, score=2, session_key="plainkey3"
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert sorted(Answer.objects.values_list("session_digest", flat=True)) == sorted(
        ["", session_key_digest("plainkey1")]
    )
    assert Feedback.objects.get().session_digest == session_key_digest("plainkey2")
    assert FeedbackRevision.objects.get().session_digest == session_key_digest("plainkey3")
