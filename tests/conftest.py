"""Shared fixtures: every test gets its own media folder and an empty vector store.

The store is Milvus Lite in the test's own folder, or, for tests marked ``engines``, each of: Milvus
Lite, and a real Milvus standalone server (started once per session, as the product starts it) with
an HNSW index and with an IVF_FLAT one (nlist 2048, nprobe 10, as in our product brief). The server's
collections outlive a test (creating one costs seconds there): each test starts with them emptied.
"""
import io
import os
import re

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from PIL import Image

from multimodal import encoders, store

# The tests' tiny models run on torch, the reference runtime, unless the environment says otherwise: the
# site's default on a CPU, ONNX Runtime, would export each tiny config once per process (the processes the
# tests start included). The ONNX runtime has tests of its own (tests/encoders), which set it.
django_settings.MULTIMODAL_ENCODER_RUNTIME = os.environ.setdefault("MULTIMODAL_ENCODER_RUNTIME", "torch")
# Passwords are hashed with MD5 here, not PBKDF2's million rounds (~0.5-1 s a hash on this machine): every user
# made with a password and every password a login form checks paid that, and no test is about the hash. The
# site's processes the tests start (manage.py, workers) keep the product's hashers; none checks a password.
django_settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

DETERMINISTIC = "test-deterministic"
# Axis per word for the deterministic encoder; colours share axes with images' RGB means.
WORD_AXES = {"red": 0, "green": 1, "blue": 2, "bicycle": 3, "wall": 4, "cat": 5, "chair": 6}
DIM = 8


class DeterministicEncoder:
    """Known vectors in, known order out.

    A text is its bag of known words (one axis each, unknown words on the last axis); an image is
    its mean colour on the red/green/blue axes. Both are L2-normalised like a real encoder's.
    """

    name = DETERMINISTIC
    dim = DIM

    def encode_text(self, texts):
        vectors = np.zeros((len(texts), DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                vectors[row, WORD_AXES.get(word, DIM - 1)] += 1.0
        return encoders.l2_normalise(vectors)

    def encode_image(self, images):
        vectors = np.zeros((len(images), DIM), dtype=np.float32)
        for row, image in enumerate(images):
            vectors[row, :3] = np.asarray(image.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0)
        return encoders.l2_normalise(vectors)


ENGINES = ("lite", "server-hnsw", "server-ivf_flat")


def pytest_configure(config):
    config.addinivalue_line("markers", "engines(*names): run on Milvus Lite and on a real Milvus server (HNSW, IVF_FLAT; "
                                       "or only the engines named)")


def pytest_generate_tests(metafunc):
    """An ``engines`` test runs on every engine (or those its marker names: ``engines("lite", "server-hnsw")``),
    unless it pairs engines with its own parameters itself."""
    marker = metafunc.definition.get_closest_marker("engines")
    paired = any("store_engine" in marker.args[0] for marker in metafunc.definition.iter_markers("parametrize"))
    if marker and not paired:
        metafunc.parametrize("store_engine", marker.args or ENGINES, indirect=True)


@pytest.fixture
def store_engine(request) -> str:
    """Which engine the test's store runs on: one of ENGINES (Lite unless the test is marked ``engines``)."""
    return getattr(request, "param", "lite")


# Milvus settings (from the environment, which overrides its milvus.yaml) of every server the tests start. Its proxy
# ticks every 50 ms, not 200: a read that must see a write (the first search after one, a flush, a count, a clear)
# waits up to one tick, and the tests make thousands (0.20 -> 0.05 s each, measured). Its query coordinator looks
# for work every 100 ms, not 500-1000: a new collection (each adapter build makes one) is loaded ~0.7 s sooner
# (2.4 -> 1.4-2.1 s measured; the server's idle CPU 0.07 -> 0.08 core). Set for the whole session, so a server a
# test restarts (or a site process starts) runs as fast.
SERVER_ENVIRONMENT = {"PROXY_TIMETICKINTERVAL": "50", "QUERYCOORD_CHECKINTERVAL": "100",
                      "QUERYCOORD_CHECKCHANNELINTERVAL": "100", "QUERYCOORD_DISTPULLINTERVAL": "100"}


@pytest.fixture(scope="session")
def milvus_server_folder(tmp_path_factory):
    """The data folder of a real Milvus standalone server, started on first use and stopped after the session."""
    from multimodal.store.local_server import LocalServer

    folder = tmp_path_factory.mktemp("milvus-server")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in SERVER_ENVIRONMENT.items():
            patch.setenv(key, value)
        server = LocalServer(folder)
        server.ensure_running()
        yield folder
        store.close_all()
        server.stop()


def _server_collections_empty(prefix: str = "") -> None:
    """Empty the base collections a previous test left (ids restart with the database) and drop the rest
    (an adapter's index builds), of those whose name starts with ``prefix``."""
    for found in store.collections_with_prefix(prefix):
        if found.name.endswith(f"_v{store.SCHEMA_VERSION}"):
            found.clear()
        else:
            found.drop()


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path, store_engine, request):
    # Rate limits count in the cache: each test starts with none used (the defaults stay in force).
    cache.clear()
    settings.MEDIA_ROOT = tmp_path / "media"
    if store_engine == "lite":
        settings.MILVUS_URI = str(tmp_path / "milvus.db")
    else:
        settings.MILVUS_URI = f"local:{request.getfixturevalue('milvus_server_folder')}"
        settings.MILVUS_INDEX_TYPE = store_engine.split("-", 1)[1].upper()
        # A collection keeps the index type it was created with: one set of collections per type.
        settings.MILVUS_COLLECTION_PREFIX = "t" + settings.MILVUS_INDEX_TYPE.lower().replace("_", "")
        # Only this index type's: the others' (and the worker tests') are emptied by the next test that uses them.
        _server_collections_empty(f"{settings.MILVUS_COLLECTION_PREFIX}_")
    settings.MULTIMODAL_UPLOAD_ROOT = tmp_path / "uploads"
    settings.MULTIMODAL_ADAPTER_ROOT = tmp_path / "adapters"
    settings.MULTIMODAL_CLIP_MODEL = "tiny-random"
    # Tesseract reads every ingested picture when OCR is on (~0.1-0.4 s each): off unless a test is about it
    # (the `ocr_on` fixture), or every test that ingests a few colour swatches pays for reading them.
    settings.MULTIMODAL_OCR = False
    # Jobs run inside on_commit callbacks here, not in a thread, so tests see them finish.
    settings.MULTIMODAL_JOBS_IN_THREAD = False
    # A web app imported by a test (searchsite.wsgi) loads no models ahead unless the test turns it on.
    settings.MULTIMODAL_PRELOAD_MODELS = False
    yield
    if store_engine == "lite":
        store.close_all()  # Lite releases its data folder's lock here


@pytest.fixture(autouse=True)
def cache_cleared():
    """Rate-limit and bad-token counts live in the (per-process) cache: none carries over between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def ocr_on(settings):
    """Ingest reads the words in pictures and scanned pages (the product's default, off in the other tests)."""
    settings.MULTIMODAL_OCR = True


@pytest.fixture
def deterministic_encoder(settings):
    encoders.register(DETERMINISTIC, DeterministicEncoder)
    settings.MULTIMODAL_CLIP_MODEL = DETERMINISTIC
    yield encoders.get(DETERMINISTIC)
    encoders.unregister(DETERMINISTIC)


@pytest.fixture
def domain_encoder(settings):
    """The synthetic domain of tests/adapter_domain.py: captions and images an adapter can align.

    Its adapters are trained here on one torch thread: their 64-wide heads are too small to share out, and a
    second thread only spin-waits on the first (4x the CPU; 2-10x the time while other processes hold a core).
    """
    import torch

    from .adapter_domain import DOMAIN_ENCODER, register

    encoder = register()
    settings.MULTIMODAL_CLIP_MODEL = DOMAIN_ENCODER
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield encoder
    torch.set_num_threads(threads)
    encoders.unregister(DOMAIN_ENCODER)


def image_bytes(color=(255, 0, 0), size=(48, 40), fmt="PNG", **save_args) -> bytes:
    """An image file's bytes: one solid colour (so the deterministic encoder's vector is exact)."""
    image = Image.new("RGB", size, color)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


def ingest_files(corpus, files: dict[str, bytes]):
    """Ingest in-memory files {name: bytes} into ``corpus`` through the real ingest service."""
    from multimodal.services.ingest import Source, items_ingest

    sources = [Source(name=name, read=lambda data=data: data, size=len(data)) for name, data in files.items()]
    return items_ingest(corpus=corpus, sources=sources)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip archive holding ``entries`` {name inside the archive: bytes}, names taken as given."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return buffer.getvalue()


def noise_png(seed: int, size: int = 40) -> bytes:
    """A PNG of random pixels: each seed gives an image whose tiny-random vector is its own."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def permissions_grant(user, *codenames: str):
    """Give ``user`` the multimodal permissions named by codename (``add_item``, ``view_ingestjob``...)."""
    from django.contrib.auth.models import Permission

    permissions = list(Permission.objects.filter(content_type__app_label="multimodal", codename__in=codenames))
    assert len(permissions) == len(codenames), f"unknown permission among {codenames}"
    user.user_permissions.add(*permissions)
    return user


# What an uploader needs: items into corpora, new corpora (their jobs come with being their creator).
UPLOADER_PERMISSIONS = ("add_item", "add_corpus")


@pytest.fixture
def superuser_client(client, django_user_model):
    """A browser session of a superuser: may upload anywhere and see every job (the attacks' victim, too)."""
    client.force_login(django_user_model.objects.create_superuser("root", password="pw-root-123456"))
    return client


def page_upload(client, capture_on_commit, files: dict[str, bytes], corpus: str = "shop"):
    """Upload ``files`` through the /upload page, run the job it starts (in this process) and return it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from multimodal.models import IngestJob

    uploads = [SimpleUploadedFile(name, data) for name, data in files.items()]
    with capture_on_commit(execute=True):
        response = client.post("/upload", {"corpus": corpus, "files": uploads})
    assert response.status_code == 302, response.content.decode()[:2000]
    return IngestJob.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))
