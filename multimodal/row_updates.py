"""Updating many rows, each with its own values, in one round of statements.

Django's ``bulk_update`` builds one ``CASE WHEN pk = ...`` expression per row and field through the
ORM's expression machinery: for a batch of 32 items and 9 fields that took longer in Python than
saving each row on its own (about 3 ms a row). The same ``UPDATE ... WHERE pk = ...`` sent for every
row with ``executemany`` does the work in a fraction of that, on SQLite and PostgreSQL alike.
"""
from typing import Any, Sequence

from django.db import connections, router
from django.db.models import Model


def rows_update(objects: Sequence[Model], fields: Sequence[str], *, only_if: dict[str, Any] | None = None) -> int:
    """Write ``fields`` of each object to its row (found by primary key); returns how many rows changed.

    ``auto_now`` fields among ``fields`` are set to now, on the objects too, as ``save()`` would.
    ``only_if`` (field name -> value) adds conditions: a row that does not meet them is left alone
    and not counted. Sends no signals, like ``bulk_update``. All objects are of one model.
    """
    if not objects:
        return 0
    model = type(objects[0])
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    written = [meta.get_field(name) for name in fields]
    conditions = [(meta.get_field(name), value) for name, value in (only_if or {}).items()]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(f'{quote(field.column)} = %s' for field in written)} "
        f"WHERE {quote(meta.pk.column)} = %s"
        + "".join(f" AND {quote(field.column)} = %s" for field, _ in conditions)
    )
    condition_values = [field.get_db_prep_save(value, connection) for field, value in conditions]
    params = [
        [*(field.get_db_prep_save(field.pre_save(row, False), connection) for field in written),
         meta.pk.get_db_prep_save(row.pk, connection), *condition_values]
        for row in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
        return cursor.rowcount
