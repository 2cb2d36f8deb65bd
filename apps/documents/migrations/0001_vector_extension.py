from django.db import migrations

MINIMUM = (0, 5)


def create_vector_extension(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        row = cursor.fetchone()
        if row is None:
            raise RuntimeError(
                "This PostgreSQL server has no pgvector extension. Plumbline needs "
                "pgvector >= 0.5: install it on the server (e.g. the postgresql-NN-pgvector "
                "package or a build from source), or unset DATABASE_URL to use the embedded "
                "PostgreSQL that ships with pgvector."
            )
        version = tuple(int(part) for part in row[0].split(".")[:2])
        if version < MINIMUM:
            raise RuntimeError(
                f"pgvector {row[0]} is too old: Plumbline needs 0.5 or later (HNSW)."
            )
        cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunPython(create_vector_extension, migrations.RunPython.noop)]
