from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """Django admin with Plumbline's site, which lets subject-matter experts in."""

    default_site = "portal.admin.PlumblineAdminSite"
