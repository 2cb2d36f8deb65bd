from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from apps.accounts.forms import LoginForm

urlpatterns = [
    path("", include("apps.core.urls")),
    path("documents/", include("apps.documents.urls")),
    path("ask/", include("apps.qa.urls")),
    path("review/", include("apps.review.urls")),
    path("training/", include("apps.training.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=LoginForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]

# A database that does not answer gives a 503 to retry, not a 500 (apps.core.views).
handler500 = "apps.core.views.server_error"
