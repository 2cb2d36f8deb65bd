from __future__ import annotations

from django.conf import settings
from django.db import models


class AdapterVersion(models.Model):
    """A LoRA adapter folder known to the portal, with the manifest it was registered with."""

    version = models.SlugField(max_length=100, unique=True)
    path = models.CharField(max_length=500)
    base_model = models.CharField(max_length=200)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    algorithm = models.CharField(max_length=20, blank=True)
    checksum = models.CharField(max_length=64)
    manifest = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True)
    refused_reason = models.TextField(
        blank=True, help_text="Why a generator last refused to serve it."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.version


class ServedAdapter(models.Model):
    """The single row that says which adapter every generator serves (null: the base model)."""

    SINGLETON_ID = 1

    adapter = models.ForeignKey(AdapterVersion, null=True, blank=True, on_delete=models.PROTECT)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"served: {self.version}"

    @property
    def version(self) -> str:
        return self.adapter.version if self.adapter is not None else "base"


class ServingChange(models.Model):
    """Every promotion and rollback, for the audit trail and for rolling back."""

    from_version = models.CharField(max_length=100)
    to_version = models.CharField(max_length=100)
    reason = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-id"]

    def __str__(self) -> str:
        return f"{self.from_version} -> {self.to_version}"
