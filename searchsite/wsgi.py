import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "searchsite.settings")
application = get_wsgi_application()

from multimodal.services.model_preload import models_preload_start  # noqa: E402  (needs the app registry)

models_preload_start()
