from django.urls import path

from apps.review import views

app_name = "review"
urlpatterns = [
    path("analytics/", views.analytics, name="analytics"),
    path("export/<str:kind>.<str:fmt>", views.export, name="export"),
]
