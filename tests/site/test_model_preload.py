"""A web process loads its models in the background as it starts; commands and tests load nothing ahead."""
import importlib
import sys
import threading

import pytest
from django.core.management import call_command

from multimodal import encoders, speech
from multimodal.services import model_preload

from ..conftest import DeterministicEncoder

ENCODER, SPEECH = "preload-encoder", "preload-speech"


@pytest.fixture
def held_models(settings, monkeypatch):
    """An encoder whose load waits for the test (and counts its loads) and a speech model, neither loaded."""
    started, release, loads = threading.Event(), threading.Event(), []

    def encoder_load():
        loads.append(ENCODER)
        started.set()
        assert release.wait(30), "the test never let the encoder load"
        return DeterministicEncoder()

    encoders.register(ENCODER, encoder_load)
    speech.register(SPEECH, lambda: loads.append(SPEECH) or object())
    settings.MULTIMODAL_CLIP_MODEL, settings.MULTIMODAL_SPEECH_MODEL = ENCODER, SPEECH
    monkeypatch.setattr(model_preload, "_started", None)
    monkeypatch.delitem(sys.modules, "searchsite.wsgi", raising=False)
    yield started, release, loads
    release.set()
    encoders.unregister(ENCODER)
    speech.unregister(SPEECH)


def test_the_wsgi_app_starts_at_once_and_loads_the_models_once_in_the_background(settings, held_models):
    started, release, loads = held_models
    settings.MULTIMODAL_PRELOAD_MODELS = True
    wsgi = importlib.import_module("searchsite.wsgi")  # what gunicorn and runserver import
    assert started.wait(10)
    assert not model_preload.models_ready()  # the app was served while the encoder still loads
    release.set()
    model_preload._started.join(10)
    assert model_preload.models_ready() and encoders.loaded() and speech.loaded()
    importlib.reload(wsgi)  # a second start in the same process loads nothing again
    model_preload._started.join(10)
    assert loads == [ENCODER, SPEECH]


def test_nothing_is_preloaded_with_the_setting_off_nor_by_a_command(settings, held_models):
    _, _, loads = held_models
    settings.MULTIMODAL_PRELOAD_MODELS = False
    importlib.import_module("searchsite.wsgi")
    settings.MULTIMODAL_PRELOAD_MODELS = True
    call_command("check", verbosity=0)
    assert model_preload._started is None and loads == [] and not model_preload.models_ready()
