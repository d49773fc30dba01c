from django.urls import path

from docs import diagram_views, views

app_name = "docs"

urlpatterns = [
    path("", views.index, name="index"),
    path("search/", views.search, name="search"),
    path("runbooks/new/", views.runbook_new, name="runbook_new"),
    path("runbooks/preview/", views.runbook_preview, name="runbook_preview"),
    path("runbooks/<slug:slug>/", views.runbook_detail, name="runbook"),
    path("runbooks/<slug:slug>/edit/", views.runbook_edit, name="runbook_edit"),
    path("runbooks/<slug:slug>/history/", views.runbook_history, name="runbook_history"),
    path("diagrams/", diagram_views.diagram_list, name="diagrams"),
    path("diagrams/<slug:name>/", diagram_views.diagram_page, name="diagram"),
    path("diagrams/<slug:name>.svg", diagram_views.diagram_svg, name="diagram_svg"),
    path("diagrams/<slug:name>.mmd", diagram_views.diagram_mermaid, name="diagram_mermaid"),
]
