from django.urls import path

from . import api, views

app_name = "multimodal"

urlpatterns = [
    path("", views.search_page, name="search"),
    path("items/<int:pk>", views.item_detail, name="item-detail"),
    path("api/search", api.search, name="api-search"),
]
