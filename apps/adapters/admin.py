from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.accounts.signed_in import signed_in_user
from apps.adapters import services
from apps.adapters.models import AdapterVersion, ServedAdapter, ServingChange


class ServingPermission:
    """Actions that change what every generator serves (``permissions=["serve"]``) need
    the permission to change the served row, whichever list they are run from; viewing
    adapters or the serving history is not enough."""

    def has_serve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("adapters.change_servedadapter")


@admin.register(AdapterVersion)
class AdapterVersionAdmin(ServingPermission, admin.ModelAdmin):
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
        chain: list[str] = []
        seen: set[int] = set()
        current = obj.parent
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

    @admin.action(
        description="Serve the selected adapter (generators switch within seconds)",
        permissions=["serve"],
    )
    def serve(self, request: HttpRequest, queryset: QuerySet[AdapterVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one adapter to serve.", messages.ERROR)
            return
        adapter = queryset.get()
        services.adapter_promote(
            version=adapter.version, user=signed_in_user(request), reason="served from admin"
        )
        self.message_user(request, f"{adapter.version} is now served.")


@admin.register(ServingChange)
class ServingChangeAdmin(ServingPermission, admin.ModelAdmin):
    """The audit trail of what was served when: read-only, never deleted."""

    list_display = ["changed_at", "from_version", "to_version", "reason", "changed_by"]
    list_select_related = ["changed_by"]
    readonly_fields = ["changed_at", "from_version", "to_version", "reason", "changed_by"]
    actions = ["rollback"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(
        description="Roll back the selected change (it must be the latest one)",
        permissions=["serve"],
    )
    def rollback(self, request: HttpRequest, queryset: QuerySet[ServingChange]) -> None:
        selected = list(queryset[:2])
        if len(selected) != 1:
            self.message_user(request, "Select exactly one change to roll back.", messages.ERROR)
            return
        change = selected[0]
        try:
            row = services.adapter_rollback(change_id=change.pk, user=signed_in_user(request))
        except services.RollbackRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, f"Rolled back “{change}”: now serving {row.version}.")
