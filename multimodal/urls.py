from django.urls import path

from .web import adapter_views, duplicate_views, saved_views, views

app_name = "multimodal"

urlpatterns = [
    path("", views.search_page, name="search"),
    path("items/<int:pk>", views.item_detail, name="item-detail"),
    path("model-status", views.model_status, name="model-status"),
    path("query-uploads", views.query_upload_create, name="query-uploads"),
    path("query-uploads/<str:ref>", views.query_upload_preview, name="query-upload"),
    path("upload", views.upload_page, name="upload"),
    path("jobs/<int:pk>", views.job_detail, name="job-detail"),
    path("jobs/<int:pk>/retry", views.job_retry, name="job-retry"),
    path("jobs/<int:pk>/cancel", views.job_cancel_view, name="job-cancel"),
    path("adapters/<int:pk>", adapter_views.adapter_detail, name="adapter-detail"),
    path("duplicates", duplicate_views.duplicates_page, name="duplicates"),
    path("duplicates/resolve", duplicate_views.duplicates_resolve, name="duplicates-resolve"),
    path("saved/", saved_views.saved_list, name="saved-list"),
    path("saved/new", saved_views.saved_create, name="saved-create"),
    path("saved/<int:pk>/open", saved_views.saved_open, name="saved-open"),
    path("saved/<int:pk>/new", saved_views.saved_whats_new, name="saved-whats-new"),
    path("saved/<int:pk>/seen", saved_views.saved_seen, name="saved-seen"),
    path("saved/<int:pk>/rename", saved_views.saved_rename, name="saved-rename"),
    path("saved/<int:pk>/share", saved_views.saved_share, name="saved-share"),
    path("saved/<int:pk>/delete", saved_views.saved_delete, name="saved-delete"),
    path("saved/<int:pk>/feed-token", saved_views.saved_feed_token, name="saved-feed-token"),
    path("saved/<int:pk>/feed.atom", saved_views.saved_feed, name="saved-feed"),
]
