from django.apps import AppConfig
from django.core.signals import request_started


class MultimodalConfig(AppConfig):
    name = "multimodal"
    verbose_name = "Multimodal search"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects vector clean-up on delete)
        from .services.background import in_process_maintenance

        # Without a broker the site itself re-queues stale jobs and sweeps uploads (no beat, no worker).
        request_started.connect(in_process_maintenance, dispatch_uid="multimodal-in-process-maintenance")
