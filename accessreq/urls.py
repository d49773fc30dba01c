from django.urls import path

from accessreq import views

urlpatterns = [
    path("catalog/", views.catalog, name="catalog"),
]
