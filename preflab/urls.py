"""URL configuration: the API under /api/, the admin, /healthz, and the SPA for the rest."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

import preflab.converters  # noqa: F401 - registers <id:…>
from accounts import api as accounts_api
from preflab import auth_api, views

api_patterns: list[URLPattern | URLResolver] = [
    path("auth/csrf/", auth_api.CsrfView.as_view(), name="auth-csrf"),
    path("auth/login/", auth_api.LoginView.as_view(), name="auth-login"),
    path("auth/logout/", auth_api.LogoutView.as_view(), name="auth-logout"),
    path("auth/me/", auth_api.MeView.as_view(), name="auth-me"),
    path("auth/token/", auth_api.TokenView.as_view(), name="auth-token"),
    path("auth/tokens/", accounts_api.TokenListView.as_view(), name="auth-tokens"),
    path(
        "auth/tokens/<id:token_id>/",
        accounts_api.TokenDetailView.as_view(),
        name="auth-token-detail",
    ),
    path("auth/logout-all/", accounts_api.LogoutAllView.as_view(), name="auth-logout-all"),
    path("system/worker-ping/", views.WorkerPingView.as_view(), name="worker-ping"),
    path(
        "system/worker-ping/<uuid:task_id>/",
        views.WorkerPingResultView.as_view(),
        name="worker-ping-result",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("", include("annotation.urls")),
    path("", include("training.urls")),
]

# A URL that matches no route answers 404: under /api/ with the API's error body
handler404 = "preflab.views.not_found"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    re_path(r"^(?!api/|admin/|static/|healthz)(?P<path>.*)$", views.spa_index, name="spa"),
]
