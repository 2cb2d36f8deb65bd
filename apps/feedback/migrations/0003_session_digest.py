"""Ratings and their revisions keep an HMAC of the rating session's key instead of the key
itself (a session key logs its holder in as its owner). Existing keys are hashed in place;
the reverse migration keeps the digests, since a key cannot be recovered from them."""

from django.db import migrations


def hash_session_keys(apps, schema_editor):
    from apps.accounts.sessions import session_keys_replace_with_digests

    for name in ("Feedback", "FeedbackRevision"):
        session_keys_replace_with_digests(apps.get_model("feedback", name))


class Migration(migrations.Migration):
    dependencies = [("feedback", "0002_review_states")]

    operations = [
        migrations.RenameField("feedback", "session_key", "session_digest"),
        migrations.RenameField("feedbackrevision", "session_key", "session_digest"),
        migrations.RunPython(hash_session_keys, migrations.RunPython.noop),
    ]
