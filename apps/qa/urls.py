from django.urls import path

from apps.qa import views

app_name = "qa"
urlpatterns = [
    path("", views.ask, name="ask"),
    path("c/<int:pk>/", views.conversation, name="conversation"),
    path("answers/<int:pk>/stream", views.answer_stream, name="stream"),
    path("answers/<int:pk>/generate", views.answer_generate, name="generate"),
    path("answers/<int:pk>/retry", views.answer_retry, name="retry"),
    path("answers/<int:pk>/feedback", views.feedback, name="feedback"),
    path("api/answers", views.api_ask, name="api-ask"),
]
