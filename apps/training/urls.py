from django.urls import path

from apps.training import views

app_name = "training"
urlpatterns = [
    path("", views.index, name="index"),
    path("runs/<int:run_id>/", views.run, name="run"),
    path("snapshots/<int:snapshot_id>.jsonl", views.snapshot_file, name="snapshot"),
    path("loops/<int:loop_id>/", views.loop, name="loop"),
    path("compare/<int:served_id>/<int:candidate_id>/", views.compare, name="compare"),
]
