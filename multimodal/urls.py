from django.urls import path

from . import views

app_name = "multimodal"

urlpatterns = [
    path("", views.search_page, name="search"),
    path("items/<int:pk>", views.item_detail, name="item-detail"),
    path("upload", views.upload_page, name="upload"),
    path("jobs/<int:pk>", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/retry", views.job_retry, name="job-retry"),
]
