"""Loading a web process's models when it starts, so the first search does not wait for them.

The web entry points (`searchsite.wsgi`, `searchsite.asgi`; ``runserver`` serves the WSGI app)
call `models_preload_start` once they are set up. With ``MULTIMODAL_PRELOAD_MODELS`` on, a
background thread loads the encoder and runs it once (its first call is slow too), then the
speech model; the process starts serving at once, and a request that needs a model meanwhile
waits for the same load behind the registry's lock. Management commands never import those
modules, so ``ingest`` or ``migrate`` load nothing they do not use. `models_ready` tells the
page whether a search will have to wait.
"""
import logging
import threading

from django.conf import settings

from .. import encoders, speech

logger = logging.getLogger(__name__)

_started: threading.Thread | None = None
_start_lock = threading.Lock()


def models_preload_start() -> threading.Thread | None:
    """Start loading the models in a background thread, once per process, if the setting is on.

    Returns the thread (the one already started on later calls), or None with the setting off.
    """
    global _started
    if not settings.MULTIMODAL_PRELOAD_MODELS:
        return None
    with _start_lock:
        if _started is None:
            _started = threading.Thread(target=models_preload, name="models-preload", daemon=True)
            _started.start()
        return _started


def models_preload() -> None:
    """Load the encoder (and run it once), then the speech model; a failure is logged, not raised
    (the first request that needs the model reports it as it would without preloading)."""
    try:
        encoders.get().encode_text(["preload"])
        logger.info("encoder %s loaded", settings.MULTIMODAL_CLIP_MODEL)
    except Exception:
        logger.exception("the encoder %s could not be preloaded", settings.MULTIMODAL_CLIP_MODEL)
    try:
        speech.get()
        logger.info("speech model %s loaded", settings.MULTIMODAL_SPEECH_MODEL)
    except Exception:
        logger.exception("the speech model %s could not be preloaded", settings.MULTIMODAL_SPEECH_MODEL)


def models_ready() -> bool:
    """Whether a search can encode at once: the configured encoder is loaded in this process."""
    return encoders.loaded()
