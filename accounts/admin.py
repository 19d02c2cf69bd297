from django.contrib import admin

from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """Tokens are listed and can be deleted (revoked); their secrets are never stored."""

    list_display = ("prefix", "name", "user", "created_at", "expires_at", "last_used_at")
    list_filter = ("expires_at",)
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("user", "key_hash", "prefix", "name", "created_at", "expires_at")

    def has_add_permission(self, request: object) -> bool:
        return False
