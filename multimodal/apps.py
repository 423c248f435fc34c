from django.apps import AppConfig


class MultimodalConfig(AppConfig):
    name = "multimodal"
    verbose_name = "Multimodal search"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects vector clean-up on delete)
