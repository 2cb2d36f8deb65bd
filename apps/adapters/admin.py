from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.adapters import services
from apps.adapters.models import AdapterVersion, ServedAdapter, ServingChange


@admin.register(AdapterVersion)
class AdapterVersionAdmin(admin.ModelAdmin):
    list_display = [
        "version",
        "algorithm",
        "lineage",
        "key_metrics",
        "base_model",
        "is_served",
        "refused_reason",
        "created_at",
    ]
    list_filter = ["algorithm", "base_model", "created_at"]
    search_fields = ["version", "path"]
    list_select_related = ["parent"]
    readonly_fields = [
        "version",
        "path",
        "base_model",
        "parent",
        "algorithm",
        "checksum",
        "manifest",
        "metrics",
        "refused_reason",
        "created_at",
    ]
    actions = ["serve"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Lineage (newest first)")
    def lineage(self, obj: AdapterVersion) -> str:
        chain, seen, current = [], set(), obj.parent
        while current is not None and current.pk not in seen and len(chain) < 8:
            chain.append(current.version)
            seen.add(current.pk)
            current = current.parent
        return " <- ".join([obj.version, *chain, "base"])

    @admin.display(description="Metrics")
    def key_metrics(self, obj: AdapterVersion) -> str:
        shown = ("reward_mean", "kl", "loss_last", "train_loss", "rewards/accuracies", "seconds")
        return (
            ", ".join(
                f"{name} {obj.metrics[name]:.3g}"
                for name in shown
                if isinstance(obj.metrics.get(name), int | float)
            )
            or "-"
        )

    @admin.display(boolean=True, description="Served")
    def is_served(self, obj: AdapterVersion) -> bool:
        return ServedAdapter.objects.filter(pk=ServedAdapter.SINGLETON_ID, adapter=obj).exists()

    @admin.action(description="Serve the selected adapter (generators switch within seconds)")
    def serve(self, request: HttpRequest, queryset: QuerySet[AdapterVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one adapter to serve.", messages.ERROR)
            return
        adapter = queryset.get()
        services.adapter_promote(
            version=adapter.version, user=request.user, reason="served from admin"
        )
        self.message_user(request, f"{adapter.version} is now served.")


@admin.register(ServingChange)
class ServingChangeAdmin(admin.ModelAdmin):
    list_display = ["changed_at", "from_version", "to_version", "reason", "changed_by"]
    list_select_related = ["changed_by"]
    actions = ["rollback"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Roll back the latest change (serve what was served before)")
    def rollback(self, request: HttpRequest, queryset: QuerySet[ServingChange]) -> None:
        row = services.adapter_rollback(user=request.user)
        self.message_user(request, f"Now serving {row.version}.")
