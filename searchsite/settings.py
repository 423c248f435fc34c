"""Settings for the multimodal search site.

Everything comes from the environment, with defaults that run one machine on embedded pieces:
SQLite, a local Milvus server over ``data/milvus``, Celery tasks executed in-process when no broker is set.
"""
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DATA_DIR = Path(os.environ.get("MULTIMODAL_DATA_DIR", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """The key from DJANGO_SECRET_KEY, else one generated once per data directory (never in code)."""
    if os.environ.get("DJANGO_SECRET_KEY"):
        return os.environ["DJANGO_SECRET_KEY"]
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # the interactive API docs' static files
    "multimodal",
    "axes",  # failed-login lockout (see the auth section below)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads a multipart body: keeps uploads whose file names are not UTF-8.
    "multimodal.readers.multipart_names.MultipartNamesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "searchsite.middleware.ContentSecurityPolicyMiddleware",
    "searchsite.middleware.RequestErrorMiddleware",  # a busy image decoder: 503, not 500
    "searchsite.middleware.ApiErrorsJsonMiddleware",  # 404, 405 and 500 under /api/ as JSON too
    # Last, so it turns the login view's locked-out answer into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "searchsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "searchsite.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes share the file: WAL lets readers go on while a writer commits, and
    # IMMEDIATE transactions wait for the write lock up front instead of failing half-way.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("DJANGO_TEST_DB", str(DATA_DIR / "test-db.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth: login lockout and bad API tokens ---
# django-axes checks every login first: after MULTIMODAL_LOGIN_FAILURE_LIMIT wrong passwords for one
# username from one address, that pair is locked for MULTIMODAL_LOGIN_COOLOFF_MIN minutes (each try
# while locked starts the wait again). Attempts are rows in the database, so every process sees them.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("MULTIMODAL_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("MULTIMODAL_LOGIN_COOLOFF_MIN", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "multimodal.web.auth.login_locked_response"
AXES_CLIENT_IP_CALLABLE = "multimodal.web.auth.client_ip"
# After MULTIMODAL_TOKEN_FAILURE_LIMIT bad API tokens from one address within
# MULTIMODAL_TOKEN_FAILURE_WINDOW_S seconds, every token from it gets 429 for that long (counted in the
# cache below: per process unless CACHE_URL is set). 0 turns it off.
MULTIMODAL_TOKEN_FAILURE_LIMIT = env_int("MULTIMODAL_TOKEN_FAILURE_LIMIT", 20)
MULTIMODAL_TOKEN_FAILURE_WINDOW_S = env_int("MULTIMODAL_TOKEN_FAILURE_WINDOW_S", 600)
# Reverse proxies in front of the site that append the client's address to X-Forwarded-For; with 0
# the header is ignored (a client could forge it) and the address is the connection's.
MULTIMODAL_PROXY_COUNT = env_int("MULTIMODAL_PROXY_COUNT", 0)
NINJA_NUM_PROXIES = MULTIMODAL_PROXY_COUNT  # the API's search rate limit counts the same address

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# Serve static files straight from static/ too, so the embedded default needs no collectstatic.
WHITENOISE_USE_FINDERS = True
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded originals are served from here: a path on this site (default), or an absolute URL on an origin
# of its own (https://media.example.net/media/), as Django's docs advise for user-uploaded files.
MEDIA_URL = os.environ.get("MULTIMODAL_MEDIA_URL") or "media/"
MEDIA_ROOT = Path(os.environ.get("MULTIMODAL_MEDIA_ROOT", DATA_DIR / "media"))
# Media is served by Django itself (with the headers of multimodal/web/media.py) unless a front server takes it over.
MULTIMODAL_SERVE_MEDIA = env_bool("MULTIMODAL_SERVE_MEDIA", True)
# Search requests carry images; the upload limit below is checked with a clear error first.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# A corpus upload may hold thousands of files in one request.
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("MULTIMODAL_MAX_UPLOAD_FILES", 10_000)

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# HTTPS. Off by default (the embedded default answers plain http://localhost); docker-compose.yml turns
# them on behind its TLS proxy, and `manage.py check --deploy` is clean there.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", False)


def _proxy_ssl_header() -> tuple[str, str] | None:
    """DJANGO_SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https": the header a TLS proxy sets, and its value.

    Only behind a proxy that always sets (or strips) that header: a client could otherwise claim HTTPS.
    """
    value = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
    if not value:
        return None
    header, _, expected = (part.strip() for part in value.partition(","))
    if not header.startswith("HTTP_") or not expected:
        raise ImproperlyConfigured(
            f"DJANGO_SECURE_PROXY_SSL_HEADER={value!r}: expected META name and value, e.g. 'HTTP_X_FORWARDED_PROTO,https'"
        )
    return header, expected


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()

# --- Cache (API rate limits). Per process by default; share one across processes with CACHE_URL. ---
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
          if CACHE_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery: Redis when CELERY_BROKER_URL is set, otherwise tasks run in-process. ---
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker child whose memory grew past this (MB) is replaced after its task; 0: never. A job is one
# task, so this bounds what leaks from job to job; a file that blows memory inside a job is handled by
# counting the runs it killed (MULTIMODAL_JOB_MAX_ATTEMPTS).
_WORKER_MAX_MEMORY_MB = env_int("MULTIMODAL_WORKER_MAX_MEMORY_MB", 3072)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = _WORKER_MAX_MEMORY_MB * 1024 if _WORKER_MAX_MEMORY_MB else None  # KiB
# Handing a task to a broker that is down fails within seconds (the upload then answers 503).
CELERY_BROKER_CONNECTION_TIMEOUT = 3
# No task's return value is read (jobs keep their state in the database): storing none also means
# sending a task does not wait on a result store that may be down.
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"

# --- Encoders ---
MULTIMODAL_CLIP_MODEL = os.environ.get("MULTIMODAL_CLIP_MODEL", "ViT-B-32:laion2b_s34b_b79k")
MULTIMODAL_DEVICE = os.environ.get("MULTIMODAL_DEVICE", "cpu")
MULTIMODAL_ENCODE_BATCH_SIZE = env_int("MULTIMODAL_ENCODE_BATCH_SIZE", 32)
# A web process (the WSGI/ASGI app, runserver) loads the encoder and the speech model in the
# background as it starts, so the first search does not wait for them; commands never do.
MULTIMODAL_PRELOAD_MODELS = env_bool("MULTIMODAL_PRELOAD_MODELS", True)
# What runs the encoder: torch (the reference, fp32) or onnx (ONNX Runtime; the towers are exported once
# into MULTIMODAL_ENCODER_CACHE_DIR) at fp32, int8 (dynamic quantisation) or fp16 (GPU only). On a CPU,
# onnx by default: the same vectors as torch at fp32 (cosine 1.0000), faster, and a web process without
# torch in it (1.1 GB with ViT-B-32 and Whisper tiny, against 1.7 GB); on a GPU, torch.
MULTIMODAL_ENCODER_RUNTIME = os.environ.get("MULTIMODAL_ENCODER_RUNTIME") or (
    "torch" if MULTIMODAL_DEVICE.startswith("cuda") else "onnx")
MULTIMODAL_ENCODER_PRECISION = os.environ.get("MULTIMODAL_ENCODER_PRECISION", "fp32")
MULTIMODAL_ENCODER_CACHE_DIR = Path(os.environ.get("MULTIMODAL_ENCODER_CACHE_DIR", DATA_DIR / "encoders"))
MULTIMODAL_ENCODER_THREADS = env_int("MULTIMODAL_ENCODER_THREADS", 0)  # 0: the physical cores this process may use
# A collection records the runtime that built it; another runtime's vectors may join it (and its queries
# search it) only when the two agree to at least this cosine on the probe inputs.
MULTIMODAL_ENCODER_AGREEMENT_MIN = float(os.environ.get("MULTIMODAL_ENCODER_AGREEMENT_MIN") or 0.98)

# --- Speech (voice queries and searchable audio) ---
# A faster-whisper size name (tiny.en, base, small, ...), a model repo id or a local CTranslate2
# directory; "hf:ID_OR_DIR" for transformers Whisper; "wav2vec2:ID_OR_DIR" for a CTC model.
MULTIMODAL_SPEECH_MODEL = os.environ.get("MULTIMODAL_SPEECH_MODEL", "tiny.en")
MULTIMODAL_SPEECH_COMPUTE_TYPE = os.environ.get("MULTIMODAL_SPEECH_COMPUTE_TYPE", "int8")
# Empty: detected per recording (English-only models such as tiny.en always say "en").
MULTIMODAL_SPEECH_LANGUAGE = os.environ.get("MULTIMODAL_SPEECH_LANGUAGE", "")
MULTIMODAL_SPEECH_BEAM_SIZE = env_int("MULTIMODAL_SPEECH_BEAM_SIZE", 5)
# Long recordings are decoded and transcribed this many seconds at a time (memory stays bounded).
MULTIMODAL_SPEECH_WINDOW_SECONDS = env_int("MULTIMODAL_SPEECH_WINDOW_SECONDS", 600)
MULTIMODAL_MAX_VOICE_SECONDS = env_int("MULTIMODAL_MAX_VOICE_SECONDS", 60)
MULTIMODAL_MAX_RECORDING_SECONDS = env_int("MULTIMODAL_MAX_RECORDING_SECONDS", 3 * 3600)
# Recordings may be larger files than images and texts (MULTIMODAL_MAX_FILE_MB).
MULTIMODAL_MAX_RECORDING_MB = env_int("MULTIMODAL_MAX_RECORDING_MB", 1024)
# Audio items are split into segments of about this length (at sentence ends where possible),
# and always where the speaker pauses for MULTIMODAL_SEGMENT_PAUSE_SECONDS or longer.
MULTIMODAL_SEGMENT_MIN_SECONDS = env_int("MULTIMODAL_SEGMENT_MIN_SECONDS", 10)
MULTIMODAL_SEGMENT_MAX_SECONDS = env_int("MULTIMODAL_SEGMENT_MAX_SECONDS", 30)
MULTIMODAL_SEGMENT_PAUSE_SECONDS = float(os.environ.get("MULTIMODAL_SEGMENT_PAUSE_SECONDS") or 1.5)
# Videos are cut into scenes where two frames a quarter second apart differ by more than the threshold
# (mean change of hue, saturation and brightness, 0-255: lower finds more cuts); scenes shorter than
# the minimum merge into the next, longer than the maximum are split, each part with its own keyframe.
MULTIMODAL_SCENE_THRESHOLD = float(os.environ.get("MULTIMODAL_SCENE_THRESHOLD") or 27.0)
MULTIMODAL_SCENE_MIN_SECONDS = float(os.environ.get("MULTIMODAL_SCENE_MIN_SECONDS") or 1.0)
MULTIMODAL_SCENE_MAX_SECONDS = float(os.environ.get("MULTIMODAL_SCENE_MAX_SECONDS") or 30.0)
MULTIMODAL_MAX_SCENES = env_int("MULTIMODAL_MAX_SCENES", 200)
MULTIMODAL_MAX_VIDEO_MINUTES = env_int("MULTIMODAL_MAX_VIDEO_MINUTES", 60)

# --- Vector store (Milvus), chosen by URI alone (see multimodal/store/engines.py) ---
# local:DIR (default): a Milvus standalone server the product starts itself over DIR and every
# process (site, commands, workers) shares; http(s)://host:port: a Milvus server run elsewhere
# (compose, a cluster, a cloud); a path: Milvus Lite embedded in one process (tests, tiny corpora).
MILVUS_URI = os.environ.get("MILVUS_URI") or f"local:{DATA_DIR / 'milvus'}"
# pymilvus reads MILVUS_URI itself when it is imported and refuses anything but http(s) (a path,
# local:...): the setting above holds it, so the variable goes before pymilvus sees it.
os.environ.pop("MILVUS_URI", None)
# The local server's gRPC port (empty: 19530, or the next free one; its other parts pick free ports).
MILVUS_LOCAL_PORT = env_int("MILVUS_LOCAL_PORT", 0) or None
MILVUS_TOKEN = os.environ.get("MILVUS_TOKEN", "")
MILVUS_COLLECTION_PREFIX = os.environ.get("MILVUS_COLLECTION_PREFIX", "mm")
# Searches and vector reads give up after this long (a stalled store answers 503, not a hung request).
MILVUS_READ_TIMEOUT_S = float(os.environ.get("MILVUS_READ_TIMEOUT_S") or 10)
# A new connection waits this long for the store's first answer (pymilvus waits 10 s): a store busy
# creating and loading collections for a job can take longer on a small machine than a search should.
MILVUS_CONNECT_TIMEOUT_S = float(os.environ.get("MILVUS_CONNECT_TIMEOUT_S") or 30)
MILVUS_INDEX_TYPE = os.environ.get("MILVUS_INDEX_TYPE", "HNSW").upper()
# JSON objects; empty means the defaults for the index type (see multimodal/store).
MILVUS_INDEX_PARAMS = json.loads(os.environ.get("MILVUS_INDEX_PARAMS") or "{}")
MILVUS_SEARCH_PARAMS = json.loads(os.environ.get("MILVUS_SEARCH_PARAMS") or "{}")

# --- Ingest and query limits ---
MULTIMODAL_MAX_FILE_MB = env_int("MULTIMODAL_MAX_FILE_MB", 50)
MULTIMODAL_MAX_QUERY_IMAGE_MB = env_int("MULTIMODAL_MAX_QUERY_IMAGE_MB", 10)
MULTIMODAL_MAX_QUERY_AUDIO_MB = env_int("MULTIMODAL_MAX_QUERY_AUDIO_MB", 20)
MULTIMODAL_MAX_IMAGE_PIXELS = env_int("MULTIMODAL_MAX_IMAGE_PIXELS", 100_000_000)
# Query images (search and /query-uploads) decode within a far smaller budget: a PNG costs 4-8 bytes
# a pixel to decode (10000x10000: 430-760 MB), and no encoder looks at more than ~0.1 MP. 16 MP
# holds a 12 MP phone photo or a 5K screenshot even as PNG, at ~130 MB a decode; JPEG photos
# are decoded at 1/2-1/8 scale and count at that size, so a 48 MP phone JPEG is fine.
MULTIMODAL_MAX_QUERY_IMAGE_PIXELS = env_int("MULTIMODAL_MAX_QUERY_IMAGE_PIXELS", 16_000_000)
# Query images decoded at once per process (the rest wait up to the time below, then get a 503).
MULTIMODAL_QUERY_IMAGE_DECODES = env_int("MULTIMODAL_QUERY_IMAGE_DECODES", 2)
MULTIMODAL_QUERY_IMAGE_DECODE_WAIT_S = env_int("MULTIMODAL_QUERY_IMAGE_DECODE_WAIT_S", 20)
MULTIMODAL_THUMBNAIL_PX = env_int("MULTIMODAL_THUMBNAIL_PX", 320)
MULTIMODAL_MAX_TOP_K = env_int("MULTIMODAL_MAX_TOP_K", 100)
MULTIMODAL_MAX_PAGE = env_int("MULTIMODAL_MAX_PAGE", 100)
# API searches per client (user, else IP): e.g. "60/min"; empty = no limit. Login can be required.
MULTIMODAL_SEARCH_RATE = os.environ.get("MULTIMODAL_SEARCH_RATE", "")
# Searches (API and page) per address by visitors with neither a session login nor an API token;
# one a second on average is more than a person types, and far less than a script. Empty = no limit.
MULTIMODAL_ANON_SEARCH_RATE = os.environ.get("MULTIMODAL_ANON_SEARCH_RATE", "60/min")
MULTIMODAL_SEARCH_REQUIRES_LOGIN = env_bool("MULTIMODAL_SEARCH_REQUIRES_LOGIN", False)
MULTIMODAL_MAX_QUERY_PARTS = env_int("MULTIMODAL_MAX_QUERY_PARTS", 8)
# Images and recordings added to a query in the page are kept for the visitor's session (under
# MULTIMODAL_UPLOAD_ROOT/query, never served as uploaded), so paging and refining do not upload again.
MULTIMODAL_QUERY_UPLOADS_PER_SESSION = env_int("MULTIMODAL_QUERY_UPLOADS_PER_SESSION", 20)
MULTIMODAL_QUERY_UPLOAD_TTL_H = env_int("MULTIMODAL_QUERY_UPLOAD_TTL_H", 2)
# Query uploads each session and each address may send per hour (files and MB), and the most the
# folder may hold in all (MB; the least recently used files go first). Over a quota: HTTP 429.
MULTIMODAL_QUERY_UPLOAD_SESSION_FILES = env_int("MULTIMODAL_QUERY_UPLOAD_SESSION_FILES", 30)
MULTIMODAL_QUERY_UPLOAD_SESSION_MB = env_int("MULTIMODAL_QUERY_UPLOAD_SESSION_MB", 60)
MULTIMODAL_QUERY_UPLOAD_IP_FILES = env_int("MULTIMODAL_QUERY_UPLOAD_IP_FILES", 120)
MULTIMODAL_QUERY_UPLOAD_IP_MB = env_int("MULTIMODAL_QUERY_UPLOAD_IP_MB", 240)
MULTIMODAL_QUERY_UPLOAD_TOTAL_MB = env_int("MULTIMODAL_QUERY_UPLOAD_TOTAL_MB", 1024)

# --- Saved searches (see multimodal/services/saved_searches.py) ---
# "What's new" and the Atom feed list the items ingested since a visit that rank this high in the search.
MULTIMODAL_SAVED_SEARCH_TOP_N = env_int("MULTIMODAL_SAVED_SEARCH_TOP_N", 50)
MULTIMODAL_MAX_SAVED_SEARCHES = env_int("MULTIMODAL_MAX_SAVED_SEARCHES", 100)  # per person

# --- Text inside pictures (OCR, see multimodal/readers/ocr.py) ---
MULTIMODAL_OCR = env_bool("MULTIMODAL_OCR", True)
# Tesseract language codes joined with "+" ("eng+deu"); each needs its tesseract-ocr-LANG package.
MULTIMODAL_OCR_LANGUAGES = os.environ.get("MULTIMODAL_OCR_LANGUAGES") or "eng"
# Longest one picture or page may take to read; past it the item keeps no words, with a warning.
MULTIMODAL_OCR_SECONDS_PER_PAGE = float(os.environ.get("MULTIMODAL_OCR_SECONDS_PER_PAGE") or 20)

# --- Fusion (see multimodal/retrieval/fusion.py) ---
MULTIMODAL_DEFAULT_FUSION = os.environ.get("MULTIMODAL_DEFAULT_FUSION", "vector")
MULTIMODAL_RRF_K = env_int("MULTIMODAL_RRF_K", 60)
# How much the keyword channel weighs against the vector channel when a query has text.
MULTIMODAL_KEYWORD_WEIGHT = float(os.environ.get("MULTIMODAL_KEYWORD_WEIGHT", "0.5"))
# Every list is read this deep before fusing, whatever the page, so pages never overlap or skip.
MULTIMODAL_FUSION_CANDIDATES = env_int("MULTIMODAL_FUSION_CANDIDATES", 200)
# Results are labelled strong, fair or weak by how far they stand above a random sample of this many of the
# searched vectors (see multimodal/retrieval/relevance.py), drawn again after this many seconds or an ingest.
MULTIMODAL_RELEVANCE_SAMPLE = env_int("MULTIMODAL_RELEVANCE_SAMPLE", 500)
MULTIMODAL_RELEVANCE_SAMPLE_TTL_S = env_int("MULTIMODAL_RELEVANCE_SAMPLE_TTL_S", 600)
# The cut between a good match and a weak one, in spreads above the sample's median; empty: the best an
# unrelated item reaches by chance in a corpus of that size. Set it from `evaluate` results when you have them.
MULTIMODAL_RELEVANCE_GOOD_Z = float(os.environ["MULTIMODAL_RELEVANCE_GOOD_Z"]) if os.environ.get(
    "MULTIMODAL_RELEVANCE_GOOD_Z") else None
# --- Near duplicates (see multimodal/services/duplicates.py) ---
# Ingest puts each picture and product row in a group of copies ("same": pictures whose 128-bit perceptual hash
# differs in at most MULTIMODAL_DUPLICATE_SAME_BITS bits, confirmed by a CLIP cosine of at least
# MULTIMODAL_DUPLICATE_SAME_COSINE; rows whose normalised text is the same) and of similar shots (its nearest CLIP
# neighbour of the same kind and corpus at MULTIMODAL_DUPLICATE_SIMILAR_COSINE or more). 0 turns it off.
MULTIMODAL_DUPLICATES = env_bool("MULTIMODAL_DUPLICATES", True)
MULTIMODAL_DUPLICATE_SAME_BITS = env_int("MULTIMODAL_DUPLICATE_SAME_BITS", 32)
MULTIMODAL_DUPLICATE_SAME_COSINE = float(os.environ.get("MULTIMODAL_DUPLICATE_SAME_COSINE") or 0.8)
MULTIMODAL_DUPLICATE_SIMILAR_COSINE = float(os.environ.get("MULTIMODAL_DUPLICATE_SIMILAR_COSINE") or 0.9)
# What a search folds into one result when it names no `collapse`: same, similar or none.
MULTIMODAL_DEFAULT_COLLAPSE = os.environ.get("MULTIMODAL_DEFAULT_COLLAPSE") or "same"
# A spec filter (specs.colour=red) is resolved in the database into at most this many item ids.
MULTIMODAL_MAX_FILTER_ITEMS = env_int("MULTIMODAL_MAX_FILTER_ITEMS", 50_000)

# --- Uploads and ingest jobs ---
# Uploaded files wait here for the workers; it is outside MEDIA_ROOT so it is never served.
MULTIMODAL_UPLOAD_ROOT = Path(os.environ.get("MULTIMODAL_UPLOAD_ROOT", DATA_DIR / "uploads"))
MULTIMODAL_MAX_UPLOAD_MB = env_int("MULTIMODAL_MAX_UPLOAD_MB", 2048)
MULTIMODAL_MAX_ARCHIVE_ENTRIES = env_int("MULTIMODAL_MAX_ARCHIVE_ENTRIES", 20_000)
MULTIMODAL_MAX_ARCHIVE_MB = env_int("MULTIMODAL_MAX_ARCHIVE_MB", 4096)
MULTIMODAL_MAX_ARCHIVE_RATIO = env_int("MULTIMODAL_MAX_ARCHIVE_RATIO", 200)
MULTIMODAL_MAX_TABLE_ROWS = env_int("MULTIMODAL_MAX_TABLE_ROWS", 200_000)
# Pages (slides, sections, chapters) read from one document; past it the rest is left out with a warning.
MULTIMODAL_MAX_DOCUMENT_PAGES = env_int("MULTIMODAL_MAX_DOCUMENT_PAGES", 500)
# Long text (text files, document pages) is searched in passages of at most this many words (CLIP
# sees 77 tokens, about 50 English words), each sharing this many words with the next when a cut
# falls inside a paragraph (see multimodal/readers/passages.py).
MULTIMODAL_PASSAGE_WORDS = env_int("MULTIMODAL_PASSAGE_WORDS", 50)
MULTIMODAL_PASSAGE_OVERLAP_WORDS = env_int("MULTIMODAL_PASSAGE_OVERLAP_WORDS", 10)
# Stored text is bounded as it is read: a cell of a CSV/XLSX (Excel's own limit by default), a text
# file's or a row's text, and all the text of one table (MB of characters; past it the table is refused).
MULTIMODAL_MAX_CELL_CHARS = env_int("MULTIMODAL_MAX_CELL_CHARS", 32_767)
MULTIMODAL_MAX_TEXT_CHARS = env_int("MULTIMODAL_MAX_TEXT_CHARS", 100_000)
MULTIMODAL_MAX_TABLE_TEXT_MB = env_int("MULTIMODAL_MAX_TABLE_TEXT_MB", 256)
# A search result carries at most this many characters of each text (description, specs...; the whole
# item is at its detail_url), and a search response at most this many KB of results.
MULTIMODAL_RESULT_TEXT_CHARS = env_int("MULTIMODAL_RESULT_TEXT_CHARS", 1_000)
MULTIMODAL_MAX_RESPONSE_KB = env_int("MULTIMODAL_MAX_RESPONSE_KB", 1024)
# A worker holds a job for this long between batches; if it dies, another takes over after it.
MULTIMODAL_JOB_LEASE_S = env_int("MULTIMODAL_JOB_LEASE_S", 60)
# With no broker, run jobs in a thread of the web process so uploads still return at once.
MULTIMODAL_JOBS_IN_THREAD = env_bool("MULTIMODAL_JOBS_IN_THREAD", True)
# A file (or a job's uploads, while being read) during which a worker died this many times (killed
# for memory, say) fails with that reason instead of killing workers forever.
MULTIMODAL_JOB_MAX_ATTEMPTS = env_int("MULTIMODAL_JOB_MAX_ATTEMPTS", 3)
# Every this many seconds (Celery beat), jobs still queued or running that no worker holds and that
# were handed out longer ago than this are handed out again (a broker restarted without its queue).
MULTIMODAL_JOBS_REQUEUE_S = env_int("MULTIMODAL_JOBS_REQUEUE_S", 60)
# Upload copies: a finished job keeps only the files a retry of its failed ones reads, for this
# long; then they go too (the failures stay listed, no longer retryable). See services/uploads_sweep.py.
MULTIMODAL_JOB_FILES_KEEP_H = env_int("MULTIMODAL_JOB_FILES_KEEP_H", 72)
# How often the sweep runs (Celery beat; and when a worker or, without a broker, the site starts),
# and how old a folder or temporary file no job owns must be before it counts as left by a crash.
MULTIMODAL_UPLOAD_SWEEP_S = env_int("MULTIMODAL_UPLOAD_SWEEP_S", 3600)
MULTIMODAL_UPLOAD_ORPHAN_GRACE_MIN = env_int("MULTIMODAL_UPLOAD_ORPHAN_GRACE_MIN", 60)
# Django writes request bodies' big files here while they arrive: beside the job folders, so a job
# takes its files by renaming them, and a process killed mid-upload leaves them where the sweep looks.
FILE_UPLOAD_TEMP_DIR = os.environ.get("MULTIMODAL_UPLOAD_TEMP_DIR") or str(MULTIMODAL_UPLOAD_ROOT / "incoming")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
CELERY_BEAT_SCHEDULE = {
    "jobs-requeue-stale": {"task": "multimodal.tasks.jobs_requeue_task", "schedule": MULTIMODAL_JOBS_REQUEUE_S,
                           "options": {"expires": MULTIMODAL_JOBS_REQUEUE_S}},
    "uploads-sweep": {"task": "multimodal.tasks.uploads_sweep_task", "schedule": MULTIMODAL_UPLOAD_SWEEP_S,
                      "options": {"expires": MULTIMODAL_UPLOAD_SWEEP_S}},
}
# check_store --repair this often (Celery beat; seconds, 0: never): items without vectors are re-embedded,
# vectors whose items are gone and deletions queued while the vector store was down are deleted.
MULTIMODAL_STORE_CHECK_INTERVAL_S = env_int("MULTIMODAL_STORE_CHECK_INTERVAL_S", 3600)
if MULTIMODAL_STORE_CHECK_INTERVAL_S > 0:
    CELERY_BEAT_SCHEDULE["store-check"] = {
        "task": "multimodal.tasks.store_check_task", "schedule": MULTIMODAL_STORE_CHECK_INTERVAL_S,
        "options": {"expires": MULTIMODAL_STORE_CHECK_INTERVAL_S},  # a run not started within its period is dropped
    }

# --- Adapters (see multimodal/services/adapter_training.py and adapter_activation.py) ---
# Trained adapter weights; outside MEDIA_ROOT (never served), on the volume web and workers share.
MULTIMODAL_ADAPTER_ROOT = Path(os.environ.get("MULTIMODAL_ADAPTER_ROOT", DATA_DIR / "adapters"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "multimodal": {"level": os.environ.get("LOG_LEVEL", "INFO")},
        "django": {"level": os.environ.get("LOG_LEVEL", "INFO")},
        # Milvus Lite 3.x answers an RPC it does not implement with a logged, harmless traceback.
        "grpc._server": {"level": "CRITICAL"},
    },
}
