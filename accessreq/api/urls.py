"""/api/v1/: the pipeline API. Unknown paths answer JSON 404s, never HTML pages."""

from django.urls import path, re_path

from accessreq.api import deployments, openapi, views

app_name = "api"

urlpatterns = [
    path("token", views.token, name="token"),
    path("authorize", views.authorize, name="authorize"),
    path("me", views.whoami, name="me"),
    path("tokens", views.token_list, name="tokens"),
    path("tokens/<int:token_id>", views.token_detail, name="token_detail"),
    path("tokens/<int:token_id>/revoke", views.token_revoke_view, name="token_revoke"),
    path("deployments", deployments.deployment_create, name="deployments"),
    path(
        "deployments/<int:deployment_id>",
        deployments.deployment_detail,
        name="deployment_detail",
    ),
    path("openapi.json", openapi.openapi_json, name="openapi"),
    path("docs", openapi.docs_page, name="docs"),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
