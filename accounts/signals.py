"""A password change revokes the user's API tokens: whoever knew the old password may have
made one. Hooked on the user model's save, so every way to change a password counts (the
admin, ``set_password`` + ``save``, ``manage.py changepassword``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from accounts.services import revoke_all

User = get_user_model()


@receiver(pre_save, sender=User)
def _remember_password(sender: Any, instance: Any, **kwargs: Any) -> None:
    fields = kwargs.get("update_fields")
    if instance.pk is None or (fields is not None and "password" not in fields):
        instance._password_changed = False  # a new user, or a save that leaves it alone
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._password_changed = stored is not None and stored != instance.password


@receiver(post_save, sender=User)
def _revoke_on_password_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    if getattr(instance, "_password_changed", False):
        revoke_all(user=instance)
        instance._password_changed = False
