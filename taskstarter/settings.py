"""Settings for the Task Starter project, driven by the environment and the tasks config.

Environment: ``DATABASE_URL`` (SQLite in ``var/`` by default), ``LIME_CONFIG`` (the tasks config
file, ``config/embedded.yaml`` by default), ``BROKER_URL``, ``LIME_PACKAGES``,
``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_ALLOWED_HOSTS``, ``LOG_FORMAT`` (``json``).
Behind HTTPS: ``DJANGO_HTTPS=1`` (secure cookies, HSTS, redirect to HTTPS, the proxy's
``X-Forwarded-Proto``), ``DJANGO_HSTS_SECONDS``, ``DJANGO_CSRF_TRUSTED_ORIGINS``.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from csp.constants import NONE, SELF
from kombu import Exchange, Queue

from lime_task.config import ConfigError, load_config
from lime_task.routing import all_queue_names, queue_name

# Generic classes such as ModelAdmin[Application] subscriptable at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TASKSTARTER_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _env_flag(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


def _local_secret_key() -> str:
    # Generated once per checkout and kept out of version control.
    path = VAR_DIR / "secret_key"
    try:
        # Created readable by its owner only, never world-readable for a moment.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _local_secret_key()
DEBUG = _env_flag("DJANGO_DEBUG")
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# --- Served over HTTPS (DJANGO_HTTPS=1): one switch for the deployment settings -----------------
HTTPS = _env_flag("DJANGO_HTTPS")
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000" if HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = _env_flag("DJANGO_HSTS_PRELOAD")
if HTTPS:
    # The TLS-terminating proxy in front of gunicorn says which scheme the browser used.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "taskstarter.apps.TaskStarterAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # WhiteNoise serves static files in development as in production (DEBUG off, gunicorn).
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "template_partials",
    "ninja",
    "django_celery_beat",
    "django_celery_results",
    "limepkg_task_starter",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it answers a locked-out sign-in.
    "axes.middleware.AxesMiddleware",
]

# --- Throttling of failed sign-ins (django-axes) -------------------------------------------------
# After LOGIN_FAILURE_LIMIT failed admin logins for one user name from one address, or wrong
# API bearer tokens from one address, that client is answered 429 with Retry-After for
# LOGIN_COOLOFF_SECONDS (counted in the database, so every web process agrees). A valid token
# keeps working. Behind a proxy, set DJANGO_PROXY_COUNT to the number of proxies in front, so
# the client's address is read from X-Forwarded-For (django-ipware).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(seconds=int(os.environ.get("LOGIN_COOLOFF_SECONDS", "900")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "limepkg_task_starter.throttling.locked_out"
AXES_IPWARE_PROXY_COUNT = int(os.environ.get("DJANGO_PROXY_COUNT", "0")) or None

ROOT_URLCONF = "taskstarter.urls"
WSGI_APPLICATION = "taskstarter.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that vanishes from the network (no refusal, no reset) must not hang a web
    # request or a task handler for the kernel's 15 minutes: connecting, and waiting for the
    # server to acknowledge what was sent, give up after this many seconds. A slow query is not
    # affected: the server acknowledges it long before it answers.
    _network_timeout = int(os.environ.get("DATABASE_NETWORK_TIMEOUT", "10"))
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": _network_timeout,
            "tcp_user_timeout": _network_timeout * 1000,
            "keepalives": 1,
            "keepalives_idle": _network_timeout,
            "keepalives_interval": max(_network_timeout // 3, 1),
            "keepalives_count": 3,
        }
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, task handler and scheduler share the file: WAL lets readers and a writer overlap.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}

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
STATICFILES_DIRS = [BASE_DIR / "static"]
# ``manage.py collectstatic`` writes here (bin/start and bin/test run it); WhiteNoise serves it
# with content-hashed names, compressed, cached for a year.
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Content-Security-Policy (django-csp): scripts, styles and everything else from this site only;
# no inline script or style, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Tasks ------------------------------------------------------------------------------------

LIME_CONFIG_FILE = Path(os.environ.get("LIME_CONFIG", BASE_DIR / "config" / "embedded.yaml"))
try:
    LIME_STACK = load_config(LIME_CONFIG_FILE)
except ConfigError as error:
    # One line per problem naming the file or variable, key and value: not a traceback.
    raise SystemExit(f"Task handler configuration error:\n{error}") from None
LIME_TASKS = LIME_STACK.tasks
LIME_PACKAGES = LIME_STACK.packages

_exchange = Exchange(LIME_TASKS.task_exchange_name, type="direct")
_default_queue = queue_name(LIME_TASKS.task_queue_name)


def _anchor_embedded_broker(url: str) -> str:
    # ``embedded+sqlite:///var/broker.sqlite3`` is relative to the project, not to the cwd.
    scheme = "embedded+sqlite:///"
    if url.startswith(scheme) and not url.removeprefix(scheme).startswith("/"):
        return scheme + str(BASE_DIR / url.removeprefix(scheme))
    return url


CELERY_BROKER_URL = _anchor_embedded_broker(LIME_TASKS.broker_connection_string)
CELERY_RESULT_BACKEND = LIME_TASKS.backend_connection_string
CELERY_RESULT_EXPIRES = LIME_TASKS.result_expires
CELERY_TASK_TIME_LIMIT = LIME_TASKS.task_time_limit
CELERY_TASK_SOFT_TIME_LIMIT = LIME_TASKS.task_soft_time_limit
CELERY_TIMEZONE = LIME_TASKS.timezone
CELERY_ENABLE_UTC = True
CELERY_TASK_DEFAULT_QUEUE = _default_queue
CELERY_TASK_DEFAULT_EXCHANGE = LIME_TASKS.task_exchange_name
CELERY_TASK_DEFAULT_ROUTING_KEY = LIME_TASKS.task_routing_key_name
CELERY_TASK_QUEUES = [
    Queue(
        name,
        _exchange,
        routing_key=LIME_TASKS.task_routing_key_name if name == _default_queue else name,
    )
    for name in all_queue_names(LIME_TASKS)
]
# Messages are JSON only: pickle is never accepted.
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = False
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # applies to acks_late tasks only
# Redis hands an unacknowledged (acks_late) message to another worker only after the visibility
# timeout; keep it longer than your longest acks_late task. BROKER_TRANSPORT_OPTIONS (JSON) adds
# or overrides kombu transport options.
# A broker that accepts connections and then never answers (a hung server, a half-open link)
# must not hang a start or a page: connecting, and waiting for any one reply, give up after this
# many seconds, on Redis (redis-py's socket timeouts, broker and result backend) and on
# RabbitMQ (the AMQP connect and handshake). The send is then recorded as not sent.
BROKER_NETWORK_TIMEOUT = float(os.environ.get("BROKER_NETWORK_TIMEOUT", "3"))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    # RabbitMQ: a send returns only once the broker has the message (publisher confirms).
    "confirm_publish": True,
    "socket_timeout": BROKER_NETWORK_TIMEOUT,
    "socket_connect_timeout": BROKER_NETWORK_TIMEOUT,
    **json.loads(os.environ.get("BROKER_TRANSPORT_OPTIONS", "{}")),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_NETWORK_TIMEOUT
CELERY_REDIS_SOCKET_TIMEOUT = BROKER_NETWORK_TIMEOUT
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = BROKER_NETWORK_TIMEOUT
# A broker that is down should fail a send within about a second, not hang the request.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0.1,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Celery's Django fixup closes every database connection before and after each task unless this
# is set: a new PostgreSQL connection per task costs more than the task. Recycle them rarely.
CELERY_DB_REUSE_MAX = 1000
# Django's task framework (django.tasks; the django-tasks backport on Django 5.2): enqueue()
# runs on the task handlers and is recorded in the history of TASKS_APPLICATION
# (limepkg_task_starter.task_framework).
TASKS = {
    "default": {
        "BACKEND": "limepkg_task_starter.task_framework.TaskStarterBackend",
        "OPTIONS": {"APPLICATION": os.environ.get("TASKS_APPLICATION", "demo")},
    }
}
# Where the task API records runs and reads their status (see lime_task.backend).
LIME_TASK_BACKEND = "limepkg_task_starter.backend.DatabaseBackend"
CELERY_BEAT_SCHEDULER = "limepkg_task_starter.scheduler:TaskStarterScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# How long the pool waits for a result a dead pool process may have written before it calls the
# process lost (10 s by default). While a job waits so, a stopping handler's pool replaces the
# dead process and cannot close: after a SIGTERM to the process group that is most of the 15 s
# a stop may take. A result written at all is read within milliseconds.
CELERY_WORKER_LOST_WAIT = 3.0
# Celery's own task events, for monitors such as Flower (`celery -A taskstarter flower`): off
# unless CELERY_EVENTS=1, as each run then sends a message per change of state.
CELERY_WORKER_SEND_TASK_EVENTS = _env_flag("CELERY_EVENTS")
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
# Publish core.task.{name}.success.v1 / .failure.v1 after each run (see lime_task.events).
LIME_TASK_EVENTS = _env_flag("LIME_TASK_EVENTS", default=True)
LIME_TASK_FAILURE_EMAILS = [
    address.strip()
    for address in os.environ.get("LIME_TASK_FAILURE_EMAILS", "").split(",")
    if address.strip()
]
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "task-starter@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "filters": {
        "truncate": {
            "()": "lime_task.logs.TruncateMessages",
            "max_size": LIME_TASKS.log_message_max_size,
        },
        "worker_lost": {"()": "lime_task.logs.WorkerLostInOneLine"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if os.environ.get("LOG_FORMAT") == "json" else "plain",
            "filters": ["truncate"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Routing decisions are logged on every send: INFO when you want them (they are
        # structured: task_route_task, task_route_type, task_queue).
        "lime_task.dispatch": {"level": os.environ.get("LOG_ROUTING_LEVEL", "WARNING")},
        # django-axes says INFO at every start and failed sign-in; its lockouts are WARNING.
        "axes": {"level": os.environ.get("LOG_THROTTLING_LEVEL", "WARNING")},
        # "Task handler raised error: WorkerLostError(...)" without billiard's traceback.
        "celery.worker.request": {"filters": ["worker_lost"]},
    },
}
