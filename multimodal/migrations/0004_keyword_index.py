"""The keyword channel's index: SQLite FTS5 kept in step by triggers, or a PostgreSQL GIN index.

Both index the same text (see multimodal/keyword.py): title; body = text; extra = specs text and
the external id (product codes).
"""
from django.db import migrations

SQLITE_FORWARD = [
    """CREATE VIRTUAL TABLE multimodal_item_fts USING fts5(
           title, body, extra, tokenize = 'unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER multimodal_item_fts_insert AFTER INSERT ON multimodal_item BEGIN
           INSERT INTO multimodal_item_fts(rowid, title, body, extra) VALUES (
               new.id, new.title, new.text,
               coalesce(json_extract(new.metadata, '$.specs_text'), '') || ' ' || new.external_id);
       END""",
    """CREATE TRIGGER multimodal_item_fts_delete AFTER DELETE ON multimodal_item BEGIN
           DELETE FROM multimodal_item_fts WHERE rowid = old.id;
       END""",
    """CREATE TRIGGER multimodal_item_fts_update AFTER UPDATE ON multimodal_item BEGIN
           DELETE FROM multimodal_item_fts WHERE rowid = old.id;
           INSERT INTO multimodal_item_fts(rowid, title, body, extra) VALUES (
               new.id, new.title, new.text,
               coalesce(json_extract(new.metadata, '$.specs_text'), '') || ' ' || new.external_id);
       END""",
    """INSERT INTO multimodal_item_fts(rowid, title, body, extra)
           SELECT id, title, text, coalesce(json_extract(metadata, '$.specs_text'), '') || ' ' || external_id
           FROM multimodal_item""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS multimodal_item_fts_insert",
    "DROP TRIGGER IF EXISTS multimodal_item_fts_delete",
    "DROP TRIGGER IF EXISTS multimodal_item_fts_update",
    "DROP TABLE IF EXISTS multimodal_item_fts",
]
POSTGRES_FORWARD = [
    """CREATE INDEX multimodal_item_fts ON multimodal_item USING GIN (to_tsvector('simple',
           title || ' ' || text || ' ' || coalesce(metadata->>'specs_text', '') || ' ' || external_id))""",
]
POSTGRES_BACKWARD = ["DROP INDEX IF EXISTS multimodal_item_fts"]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)
    return run


class Migration(migrations.Migration):
    dependencies = [("multimodal", "0003_audio_segments_and_dates")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        ),
    ]
