from django.urls import path

from audit import export_views, views

app_name = "audit"

urlpatterns = [
    path("audit/", views.search, name="search"),
    path("audit/events/<int:sequence>/", views.event_detail, name="event"),
    path("audit/export/", export_views.export, name="export"),
    path("audit/keys", views.keys, name="keys"),
]
