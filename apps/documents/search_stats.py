"""Document frequencies of lexemes among searchable chunks: the IDF behind full-text ranking.

Kept incrementally: a document's counts are added when it becomes the searched version and
subtracted when it stops being searched or is deleted. The row with the empty lexeme holds
the number of searchable chunks.
"""

from __future__ import annotations

from django.db import connection, transaction

_STATS_LOCK = 7_112_001  # advisory lock id: one writer of the lexeme statistics at a time


def lexeme_stats_apply(*, added: list[int], removed: list[int]) -> None:
    """Adds the lexeme counts of documents that became searchable and subtracts those of
    documents that stopped being searched. Runs inside the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_STATS_LOCK])
        for document_id, sign in [*((pk, 1) for pk in added), *((pk, -1) for pk in removed)]:
            chunks_sql = (
                f"SELECT search_vector FROM documents_chunk WHERE document_id = {int(document_id)}"
            )
            cursor.execute(
                """
                INSERT INTO documents_lexemestat (lexeme, chunks)
                SELECT word, %(sign)s * ndoc FROM ts_stat(%(chunks_sql)s)
                UNION ALL
                SELECT '', %(sign)s * count(*) FROM documents_chunk WHERE document_id = %(id)s
                ORDER BY 1
                ON CONFLICT (lexeme) DO UPDATE SET chunks = documents_lexemestat.chunks + EXCLUDED.chunks
                """,
                {"sign": sign, "chunks_sql": chunks_sql, "id": document_id},
            )
        cursor.execute("DELETE FROM documents_lexemestat WHERE chunks <= 0 AND lexeme <> ''")


@transaction.atomic
def lexeme_stats_rebuild() -> int:
    """Recounts the lexeme statistics from scratch (after a restore, say). Returns lexemes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_STATS_LOCK])
        cursor.execute("DELETE FROM documents_lexemestat")
        cursor.execute(
            """
            INSERT INTO documents_lexemestat (lexeme, chunks)
            SELECT word, ndoc FROM ts_stat('SELECT search_vector FROM documents_chunk WHERE searchable')
            UNION ALL
            SELECT '', count(*) FROM documents_chunk WHERE searchable
            """
        )
        return cursor.rowcount - 1
