"""SCIM 2.0 under /scim/v2/ (bearer tokens only) and the security admins' token page."""

from django.urls import path

from scim import pages, views

app_name = "scim"

urlpatterns = [
    path("tokens/", pages.tokens, name="tokens"),
    path("tokens/<int:token_id>/revoke/", pages.token_revoke, name="token_revoke"),
    path("v2/ServiceProviderConfig", views.config, name="config"),
    path("v2/ResourceTypes", views.resource_type_list, name="resource_types"),
    path("v2/ResourceTypes/<str:name>", views.resource_type, name="resource_type"),
    path("v2/Schemas", views.schema_list, name="schemas"),
    path("v2/Schemas/<str:urn>", views.schema, name="schema"),
    path("v2/Users", views.users, name="users"),
    path("v2/Users/<str:user_id>", views.user, name="user"),
    path("v2/Groups", views.groups, name="groups"),
    path("v2/Groups/<str:team_id>", views.group, name="group"),
    # Anything else under v2/ answers as SCIM (a 404 in the error schema), not as a page.
    path("v2/", views.unknown, name="base"),
    path("v2/<path:rest>", views.unknown, name="unknown"),
]
