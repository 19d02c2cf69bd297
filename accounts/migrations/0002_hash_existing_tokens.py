"""Tokens issued before tokens were stored hashed (DRF's ``authtoken_token`` table, key in
clear) keep working: each is copied as its hash, with no expiry, and the clear-text copy is
deleted, so the database no longer holds a usable token."""

from django.db import migrations

from accounts.keys import PREFIX_CHARS, hash_key


def forwards(apps, schema_editor):  # type: ignore[no-untyped-def]
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        token = ApiToken.objects.create(
            user_id=user_id, key_hash=hash_key(key), prefix=key[:PREFIX_CHARS], name="earlier"
        )
        ApiToken.objects.filter(pk=token.pk).update(created_at=created)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
