"""Spec filters by index: one row (item, spec name, lower-cased value) per spec, kept in step by triggers.

A spec filter (specs.colour=red) used to read the JSON metadata of every item, whatever else the
search was filtered by. The rows here are what `multimodal.services.search` looks a spec up in; like the keyword index of
migration 0004 they follow every insert, update and delete of an item, in both databases.
Values are lower-cased by the database's own lower(), as the lookup's value is, so a filter stays
case-insensitive as before.
"""
from django.db import migrations

# An item's spec rows, read from ``{item}``'s JSON metadata (only string, number and boolean values).
SQLITE_SPEC_ROWS = """SELECT {item}.id, specs.key, lower(CAST(specs.value AS TEXT))
           FROM {tables}json_each({item}.metadata, '$.specs') AS specs
           WHERE json_type({item}.metadata, '$.specs') = 'object' AND specs.value IS NOT NULL
               AND specs.type NOT IN ('object', 'array')"""
SQLITE_FORWARD = [
    "CREATE TABLE multimodal_item_spec (item_id integer NOT NULL, name text NOT NULL, value text NOT NULL)",
    "CREATE INDEX multimodal_item_spec_lookup ON multimodal_item_spec (name, value, item_id)",
    "CREATE INDEX multimodal_item_spec_item ON multimodal_item_spec (item_id)",
    f"""CREATE TRIGGER multimodal_item_spec_insert AFTER INSERT ON multimodal_item BEGIN
           INSERT INTO multimodal_item_spec (item_id, name, value) {SQLITE_SPEC_ROWS.format(item="new", tables="")};
       END""",
    """CREATE TRIGGER multimodal_item_spec_delete AFTER DELETE ON multimodal_item BEGIN
           DELETE FROM multimodal_item_spec WHERE item_id = old.id;
       END""",
    f"""CREATE TRIGGER multimodal_item_spec_update AFTER UPDATE OF metadata ON multimodal_item BEGIN
           DELETE FROM multimodal_item_spec WHERE item_id = old.id;
           INSERT INTO multimodal_item_spec (item_id, name, value) {SQLITE_SPEC_ROWS.format(item="new", tables="")};
       END""",
    f"""INSERT INTO multimodal_item_spec (item_id, name, value)
           {SQLITE_SPEC_ROWS.format(item="multimodal_item", tables="multimodal_item, ")}""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS multimodal_item_spec_insert",
    "DROP TRIGGER IF EXISTS multimodal_item_spec_delete",
    "DROP TRIGGER IF EXISTS multimodal_item_spec_update",
    "DROP TABLE IF EXISTS multimodal_item_spec",
]
POSTGRES_FORWARD = [
    "CREATE TABLE multimodal_item_spec (item_id bigint NOT NULL, name text NOT NULL, value text NOT NULL)",
    "CREATE INDEX multimodal_item_spec_lookup ON multimodal_item_spec (name, value, item_id)",
    "CREATE INDEX multimodal_item_spec_item ON multimodal_item_spec (item_id)",
    """CREATE FUNCTION multimodal_item_spec_sync() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           IF TG_OP IN ('UPDATE', 'DELETE') THEN
               DELETE FROM multimodal_item_spec WHERE item_id = OLD.id;
           END IF;
           IF TG_OP IN ('INSERT', 'UPDATE') AND jsonb_typeof(NEW.metadata -> 'specs') = 'object' THEN
               INSERT INTO multimodal_item_spec (item_id, name, value)
                   SELECT NEW.id, key, lower(value) FROM jsonb_each_text(NEW.metadata -> 'specs')
                   WHERE value IS NOT NULL AND jsonb_typeof(NEW.metadata -> 'specs' -> key) NOT IN ('object', 'array');
           END IF;
           RETURN NULL;
       END $$""",
    """CREATE TRIGGER multimodal_item_spec_sync AFTER INSERT OR DELETE OR UPDATE OF metadata ON multimodal_item
           FOR EACH ROW EXECUTE FUNCTION multimodal_item_spec_sync()""",
    """INSERT INTO multimodal_item_spec (item_id, name, value)
           SELECT item.id, specs.key, lower(specs.value)
           FROM multimodal_item AS item, jsonb_each_text(item.metadata -> 'specs') AS specs
           WHERE jsonb_typeof(item.metadata -> 'specs') = 'object' AND specs.value IS NOT NULL
               AND jsonb_typeof(item.metadata -> 'specs' -> specs.key) NOT IN ('object', 'array')""",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS multimodal_item_spec_sync ON multimodal_item",
    "DROP FUNCTION IF EXISTS multimodal_item_spec_sync()",
    "DROP TABLE IF EXISTS multimodal_item_spec",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)
    return run


class Migration(migrations.Migration):
    dependencies = [("multimodal", "0005_adapters_and_index_builds")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        ),
    ]
