"""Answers keep an HMAC of the asking session's key instead of the key itself (a session
key logs its holder in as its owner). Existing keys are hashed in place; the reverse
migration keeps the digests, since a key cannot be recovered from them."""

from django.db import migrations


def hash_session_keys(apps, schema_editor):
    from apps.accounts.sessions import session_keys_replace_with_digests

    session_keys_replace_with_digests(apps.get_model("qa", "Answer"))


class Migration(migrations.Migration):
    dependencies = [("qa", "0003_retrieval_query_evidence")]

    operations = [
        migrations.RenameField("answer", "session_key", "session_digest"),
        migrations.RunPython(hash_session_keys, migrations.RunPython.noop),
    ]
