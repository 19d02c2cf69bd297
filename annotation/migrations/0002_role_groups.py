"""Create one auth group per role, with the model permissions it carries in the admin."""

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    "annotator": [],
    "project_admin": [
        "view_project",
        "change_project",
        "view_projectmembership",
        "add_projectmembership",
        "change_projectmembership",
        "delete_projectmembership",
    ],
    "ml_engineer": ["view_project"],
}


def create_groups(apps: Any, schema_editor: Any) -> None:
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        perms = permission_model.objects.filter(
            content_type__app_label="annotation", codename__in=codenames
        )
        group.permissions.set(perms)


def remove_groups(apps: Any, schema_editor: Any) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
