from django.urls import path

from apps.documents import views

app_name = "documents"
urlpatterns = [
    path("", views.library, name="library"),
    path("search/", views.search, name="search"),
    path("upload/", views.upload, name="upload"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/progress.json", views.progress, name="progress"),
    path("<int:pk>/file", views.document_file, name="file"),
    path("<int:pk>/text", views.text, name="text"),
]
