"""Gatehouse settings: one module, configured entirely by environment variables.

``GATEHOUSE_ENV`` picks the defaults: ``development`` (the embedded default used by ``make run``:
SQLite and a filesystem broker under ``var/``, generated secrets) or ``production`` (every secret
and host must be given; secure cookies, HSTS). A wrong value stops start-up naming the variable.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_str,
    env_url,
    generated_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("GATEHOUSE_VAR_DIR", str(BASE_DIR / "var")))

GATEHOUSE_ENV = env_choice("GATEHOUSE_ENV", "development", ("development", "production"))
PRODUCTION = GATEHOUSE_ENV == "production"
DEPLOYMENT_NAME = env_str("GATEHOUSE_DEPLOYMENT_NAME", GATEHOUSE_ENV)

# Off unless asked for, in development too: `make run` is how people first meet the product, and
# its 404, 403, 405 and 500 pages are the styled ones. DEBUG=true shows Django's debug pages
# (tracebacks, every URL pattern) for developers who want them.
DEBUG = env_bool("DEBUG", default=False)


def _code_version() -> str:
    explicit = env_str("GATEHOUSE_VERSION")
    if explicit:
        return explicit
    with open(BASE_DIR / "pyproject.toml", "rb") as handle:
        version = str(tomllib.load(handle)["project"]["version"])
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH is intended
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=2,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version}+{commit}" if commit else version


CODE_VERSION = _code_version()

# --- Secrets -------------------------------------------------------------------------------

if PRODUCTION:
    SECRET_KEY = env_str("SECRET_KEY", required=True)
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long.")
    _field_keys = env_list("FIELD_ENCRYPTION_KEYS", [])
    if not _field_keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set.")
else:
    SECRET_KEY = env_str("SECRET_KEY") or generated_secret(VAR_DIR / "secret_key")
    _field_keys = env_list("FIELD_ENCRYPTION_KEYS", []) or [
        generated_secret(VAR_DIR / "field_encryption_key")
    ]
for _key in _field_keys:
    if len(_key) < 32:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS entries must be at least 32 characters.")
# The first key encrypts; all of them decrypt, so keys can be rotated.
FIELD_ENCRYPTION_KEYS = _field_keys

# --- Audit ledger signing and anchoring --------------------------------------------------------

# The Ed25519 key that signs checkpoints: a PEM file (AUDIT_SIGNING_KEY_FILE) or the PEM text
# itself (AUDIT_SIGNING_KEY). The embedded default generates a file under var/ on first use.
AUDIT_SIGNING_KEY = env_str("AUDIT_SIGNING_KEY", "")
AUDIT_SIGNING_KEY_FILE = env_str(
    "AUDIT_SIGNING_KEY_FILE", "" if PRODUCTION else str(VAR_DIR / "audit-signing-key.pem")
)
if PRODUCTION and not (AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE):
    raise ImproperlyConfigured("AUDIT_SIGNING_KEY_FILE or AUDIT_SIGNING_KEY must be set.")
# Each new checkpoint is also written outside the database, so a rewrite of the database by
# whoever controls it is caught: an append-only JSON Lines file (written while signing) and/or a
# webhook (posted after). Without one, events deleted with their checkpoints would not show, so
# production refuses to start without an anchor.
AUDIT_ANCHOR_FILE = env_str(
    "AUDIT_ANCHOR_FILE", "" if PRODUCTION else str(VAR_DIR / "audit-anchors.jsonl")
)
AUDIT_ANCHOR_URL = env_str("AUDIT_ANCHOR_URL", "")
if AUDIT_ANCHOR_URL:
    env_url("AUDIT_ANCHOR_URL", AUDIT_ANCHOR_URL, schemes=("http", "https"))
if PRODUCTION and not (AUDIT_ANCHOR_FILE or AUDIT_ANCHOR_URL):
    raise ImproperlyConfigured(
        "AUDIT_ANCHOR_FILE or AUDIT_ANCHOR_URL must be set: signed checkpoints need an anchor "
        "outside the database."
    )
# Besides every 5 minutes (beat), a checkpoint is signed as soon as this many events were added
# since a multiple of it, so the unsigned tail stays short under load. 0 turns it off.
AUDIT_CHECKPOINT_EVERY_EVENTS = env_int("AUDIT_CHECKPOINT_EVERY_EVENTS", 1000, minimum=0)

# --- Hosts and URLs ------------------------------------------------------------------------

# The embedded default follows the port `make run` serves on (PORT, as `manage.py serve` passes
# it to the web server, the worker and beat), so links in emails and the CSRF origin match it.
_PORT = env_int("PORT", 8000, minimum=1)
if _PORT > 65535:
    raise ImproperlyConfigured(f"PORT must be a number from 1 to 65535 (got {_PORT}).")
SITE_URL = env_url("SITE_URL", f"http://127.0.0.1:{_PORT}", schemes=("http", "https"))
if PRODUCTION:
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [])
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set (comma-separated host names).")
else:
    ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL.rstrip("/")])

# --- Applications --------------------------------------------------------------------------

INSTALLED_APPS = [
    "portal",
    "accessreq",
    "audit",
    "docs",
    "scim",
    "portal.apps.GatehouseAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "django_otp",
    "simple_history",
    "django_celery_beat",
    "csp",
]

MIDDLEWARE = [
    # API endpoints leave here for API_MIDDLEWARE (below); everything else goes on.
    "portal.middleware.ApiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "portal.middleware.MFARequiredMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.SessionTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, so the page it puts in place of an empty error still gets the headers set above.
    "portal.errors.ErrorPageMiddleware",
]
# What API endpoints (views marked api_endpoint, all bearer-token JSON) go through instead: no
# sessions, CSRF, sign-in or MFA gates, messages or page CSP, which their endpoint wrapper makes
# moot and which cost a third of an authorization decision's CPU.
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.RequestIdMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]
CSRF_FAILURE_VIEW = "portal.errors.csrf_failure"

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
AUTH_USER_MODEL = "portal.User"

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
                "portal.context_processors.layout",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------

_default_db = f"sqlite:///{VAR_DIR / 'gatehouse.sqlite3'}"
_database_url = env_str("DATABASE_URL", _default_db)
try:
    _db = dj_database_url.parse(_database_url, conn_max_age=0)
except Exception as exc:  # dj-database-url raises plain ValueError/KeyError
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _db["ENGINE"] not in {
    "django.db.backends.sqlite3",
    "django.db.backends.postgresql",
}:
    raise ImproperlyConfigured("DATABASE_URL must use sqlite:// or postgres://.")
# Seconds a worker thread keeps its database connection between requests (0: a new one each
# request). A PostgreSQL connection costs milliseconds to open, more than an API call itself.
_db["CONN_MAX_AGE"] = env_int(
    "DATABASE_CONN_MAX_AGE", 60 if _db["ENGINE"].endswith("postgresql") else 0, minimum=0
)
_db["CONN_HEALTH_CHECKS"] = True
# The API's hot statements (portal.sql) run as prepared statements on PostgreSQL; off for a
# pooler that cannot keep them (PgBouncer before 1.21 in transaction mode).
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
if _db["ENGINE"] == "django.db.backends.postgresql" and DATABASE_PREPARED_STATEMENTS:
    # psycopg prepares nothing while this is None (Django's default). Django's own cursors bind
    # on the client and never prepare; only portal.sql asks, with prepare=True, so the count that
    # would prepare any other statement automatically is out of reach.
    _db.setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
if _db["ENGINE"] == "django.db.backends.sqlite3":
    if _db["NAME"] not in ("", ":memory:"):
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
    # concurrent writers (web, worker, beat) queue instead of failing with "database is locked".
    _db["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (allauth's rate limits need a shared one) -----------------------------------------

_cache_url = env_str("CACHE_URL", "")
if not _cache_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
elif _cache_url.startswith(("redis://", "rediss://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
        }
    }
elif _cache_url == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured("CACHE_URL must be redis://..., rediss://... or locmem://.")

# --- Celery --------------------------------------------------------------------------------

_broker_dir = VAR_DIR / "broker"
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL",
    "filesystem://localhost/",
    schemes=("filesystem", "redis", "rediss", "amqp", "amqps", "pyamqp", "memory"),
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir),
        "store_processed": False,
        # kombu keeps fanout/pidbox exchange files here; the default is ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Defaults for beat; the DatabaseScheduler copies them into django-celery-beat's tables, where
# they can be edited in the admin.
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {
        "task": "portal.tasks.clear_expired_sessions",
        "schedule": 3600.0,
    },
    "audit-checkpoint": {"task": "audit.tasks.checkpoint_sign", "schedule": 300.0},
    "audit-verify": {"task": "audit.tasks.ledger_verify", "schedule": 3600.0},
    "access-grants-expire": {"task": "accessreq.tasks.grants_expire", "schedule": 60.0},
    "access-grants-activate": {"task": "accessreq.tasks.grants_activate", "schedule": 60.0},
    "access-expiry-warnings": {"task": "accessreq.tasks.expiry_warnings", "schedule": 300.0},
    "access-requests-sweep": {"task": "accessreq.tasks.requests_sweep", "schedule": 300.0},
    "deployments-expire": {"task": "accessreq.tasks.deployments_expire", "schedule": 60.0},
    "deployments-escalate": {"task": "accessreq.tasks.deployments_escalate", "schedule": 300.0},
    "report-exports-sweep": {"task": "accessreq.tasks.report_exports_sweep", "schedule": 300.0},
    # Hourly: reminders are once per reviewer and day, closing happens within an hour of the
    # deadline; each template's own launch schedule is a separate entry made from its cadence.
    "access-campaigns": {"task": "accessreq.tasks.campaigns_daily", "schedule": 3600.0},
    "access-notifications-resend": {
        "task": "accessreq.tasks.notifications_resend",
        "schedule": 300.0,
    },
    # Owners hear about minted tokens a few days and one day before they expire.
    "api-token-expiry-reminders": {
        "task": "accessreq.tasks.token_expiry_reminders",
        "schedule": 3600.0,
    },
    # Hourly: each person is flagged (and their manager told) once until they sign in again.
    "people-inactivity-sweep": {
        "task": "accessreq.tasks.people_inactivity_sweep",
        "schedule": 3600.0,
    },
    # Hourly is plenty: an owner is emailed once per due date however often it runs.
    "docs-runbook-review-reminders": {
        "task": "docs.tasks.runbook_review_reminders",
        "schedule": 3600.0,
    },
}

# --- Access workflow -----------------------------------------------------------------------

# A pending request with no decision after this many days times out.
REQUEST_TIMEOUT_DAYS = env_int("REQUEST_TIMEOUT_DAYS", 7, minimum=1)
# A stage waiting this many hours is escalated to the security admins.
REQUEST_ESCALATE_AFTER_HOURS = env_int("REQUEST_ESCALATE_AFTER_HOURS", 48, minimum=1)
# Break-glass: the longest emergency grant, and how soon an approver must review it.
BREAK_GLASS_MAX_MINUTES = env_int("BREAK_GLASS_MAX_MINUTES", 120, minimum=15)
BREAK_GLASS_REVIEW_HOURS = env_int("BREAK_GLASS_REVIEW_HOURS", 24, minimum=1)
# Identity lifecycle: a mover's access review lasts this many days; people who have not signed
# in for INACTIVITY_FLAG_DAYS are flagged to their manager, and after INACTIVITY_SUSPEND_DAYS
# their access is revoked (0 turns either off; suspension is off unless set).
MOVER_REVIEW_DAYS = env_int("MOVER_REVIEW_DAYS", 14, minimum=1)
INACTIVITY_FLAG_DAYS = env_int("INACTIVITY_FLAG_DAYS", 90, minimum=0)
INACTIVITY_SUSPEND_DAYS = env_int("INACTIVITY_SUSPEND_DAYS", 0, minimum=0)
if (
    INACTIVITY_SUSPEND_DAYS
    and INACTIVITY_FLAG_DAYS
    and INACTIVITY_SUSPEND_DAYS <= INACTIVITY_FLAG_DAYS
):
    raise ImproperlyConfigured(
        "INACTIVITY_SUSPEND_DAYS must be more than INACTIVITY_FLAG_DAYS (people are flagged "
        "before their access is suspended), or 0 to leave suspension off."
    )
# First wait before a failed webhook delivery is retried; it doubles with each attempt.
PROVISIONING_RETRY_SECONDS = env_int("PROVISIONING_RETRY_SECONDS", 30, minimum=0)

# --- Pipeline API --------------------------------------------------------------------------

# Tokens exchanged from a CI identity token live this long (never more than 15 minutes).
API_EXCHANGED_TOKEN_MINUTES = env_int("API_EXCHANGED_TOKEN_MINUTES", 15, minimum=1)
if API_EXCHANGED_TOKEN_MINUTES > 15:
    raise ImproperlyConfigured("API_EXCHANGED_TOKEN_MINUTES must be at most 15.")
# The longest lifetime an owner may give a minted token, and when owners are reminded.
API_MINTED_TOKEN_MAX_DAYS = env_int("API_MINTED_TOKEN_MAX_DAYS", 30, minimum=1)
API_TOKEN_REMINDER_DAYS = env_int("API_TOKEN_REMINDER_DAYS", 7, minimum=1)
# Requests per minute: per token on authenticated endpoints, per client address on the exchange.
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 600, minimum=1)
API_EXCHANGE_RATE_LIMIT_PER_MINUTE = env_int("API_EXCHANGE_RATE_LIMIT_PER_MINUTE", 60, minimum=1)
# How long an issuer's published keys are cached; an unknown key id refreshes them sooner.
API_JWKS_CACHE_SECONDS = env_int("API_JWKS_CACHE_SECONDS", 3600, minimum=0)
API_JWKS_MIN_REFRESH_SECONDS = env_int("API_JWKS_MIN_REFRESH_SECONDS", 30, minimum=0)
# Deployment approvals: valid this long once approved; a pending one expires after the hours.
DEPLOYMENT_APPROVAL_MINUTES = env_int("DEPLOYMENT_APPROVAL_MINUTES", 60, minimum=1)

# Auditor reports: exports of more rows than this are built by a worker in the background,
# kept under REPORT_EXPORT_DIR for REPORT_EXPORT_KEEP_HOURS, then deleted.
REPORT_EXPORT_SYNC_ROWS = env_int("REPORT_EXPORT_SYNC_ROWS", 10_000, minimum=0)
REPORT_EXPORT_KEEP_HOURS = env_int("REPORT_EXPORT_KEEP_HOURS", 24, minimum=1)
REPORT_EXPORT_DIR = Path(env_str("REPORT_EXPORT_DIR", str(VAR_DIR / "exports")))
DEPLOYMENT_PENDING_HOURS = env_int("DEPLOYMENT_PENDING_HOURS", 24, minimum=1)
# A deployment stage waiting this long gets the security admins as extra approvers, once.
DEPLOYMENT_ESCALATE_AFTER_MINUTES = env_int("DEPLOYMENT_ESCALATE_AFTER_MINUTES", 60, minimum=1)
# Signed decision callbacks to the pipeline: attempts before giving up (backoff from 10 s).
DEPLOYMENT_CALLBACK_ATTEMPTS = env_int("DEPLOYMENT_CALLBACK_ATTEMPTS", 5, minimum=1)
DEPLOYMENT_CALLBACK_RETRY_SECONDS = env_int("DEPLOYMENT_CALLBACK_RETRY_SECONDS", 10, minimum=0)
# The only hosts callbacks may go to (comma-separated; "*.ci.example.com" for subdomains). None
# by default: a pipeline must not make Gatehouse POST to whatever address it names.
DEPLOYMENT_CALLBACK_HOSTS = [
    name.strip().lower()
    for name in env_str("DEPLOYMENT_CALLBACK_HOSTS", "").split(",")
    if name.strip()
]

# --- SCIM 2.0 provisioning (scim/) ---------------------------------------------------------

# Requests a minute per SCIM token (counted in the cache, like the API's); past it 429 with
# Retry-After, which Okta and Entra ID both honour by retrying later. An initial Entra ID cycle
# sends a few requests per person, so the default lets ~1,000 people sync in a few minutes.
SCIM_RATE_LIMIT_PER_MINUTE = env_int("SCIM_RATE_LIMIT_PER_MINUTE", 1200, minimum=1)
# The largest page a list answers (a client's larger ``count`` is cut to this).
SCIM_MAX_RESULTS = env_int("SCIM_MAX_RESULTS", 200, minimum=1)

# --- Monitoring ----------------------------------------------------------------------------

# Prometheus scrapes /metrics with "Authorization: Bearer <METRICS_TOKEN>". Unset, the endpoint
# is closed (404): the numbers describe who holds what and what was refused.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 32 characters (or unset, which closes /metrics)."
    )

# --- Docs ----------------------------------------------------------------------------------

# Who people contact about security; shown on every docs page.
SECURITY_LIAISON_NAME = env_str("SECURITY_LIAISON_NAME", "Security team")
SECURITY_LIAISON_CONTACT = env_str("SECURITY_LIAISON_CONTACT", "security@example.com")
# How often runbooks must be reviewed unless a runbook sets its own interval.
RUNBOOK_REVIEW_DAYS = env_int("RUNBOOK_REVIEW_DAYS", 180, minimum=1)

# --- Authentication ------------------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_PASSWORD_CHANGE_REDIRECT_URL = "account_security"  # noqa: S105 - a URL name
ACCOUNT_ADAPTER = "portal.auth.adapter.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "portal.auth.forms.LoginForm",
    "change_password": "portal.auth.forms.ChangePasswordForm",
    "reset_password": "portal.auth.forms.ResetPasswordForm",
    "reset_password_from_key": "portal.auth.forms.ResetPasswordKeyForm",
}
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Gatehouse] "

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Gatehouse")
# Seconds of the first throttle delay after a wrong code; it doubles with each further failure.
MFA_THROTTLE_FACTOR = env_int("MFA_THROTTLE_FACTOR", 1, minimum=0)
MFA_BACKUP_CODE_COUNT = 10
# How recent an OTP verification must be for step-up actions.
MFA_STEP_UP_SECONDS = env_int("MFA_STEP_UP_SECONDS", 300, minimum=30)

SESSION_ENGINE = "portal.sessions"
# A sign-in lasts at most SESSION_COOKIE_AGE seconds however busy (the absolute lifetime), and
# ends sooner after SESSION_IDLE_SECONDS without a request (portal.middleware).
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600, minimum=300)
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 30 * 60, minimum=60)
if SESSION_IDLE_SECONDS > SESSION_COOKIE_AGE:
    raise ImproperlyConfigured("SESSION_IDLE_SECONDS must not be more than SESSION_COOKIE_AGE.")
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# --- Security headers ----------------------------------------------------------------------

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("BEHIND_TLS_PROXY", True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- Single sign-on (OpenID Connect) -------------------------------------------------------
# Every SSO setting is here. OIDC_PROVIDERS (JSON, see portal/auth/sso_config.py and the README)
# lists the providers; empty means passwords only. People are matched by verified email; the
# decisions (who may sign in, whether a provider's MFA counts) are in portal/auth/sso.py.

from portal.auth.sso_config import (  # noqa: E402
    allauth_providers,
    form_action_origins,
    parse_providers,
)

INSTALLED_APPS += [
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
]
OIDC_PROVIDERS = parse_providers(env_str("OIDC_PROVIDERS", ""), production=PRODUCTION)
SOCIALACCOUNT_PROVIDERS = allauth_providers(OIDC_PROVIDERS)
SOCIALACCOUNT_ADAPTER = "portal.auth.sso.SocialAccountAdapter"
# Nobody signs up through a provider: pre_social_login links a known person or refuses (or
# creates the person, for a provider with "jit"); allauth's sign-up form is never reached.
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
# The buttons POST (with CSRF) to start a sign-in; a GET only shows a confirmation page.
SOCIALACCOUNT_LOGIN_ON_GET = False
# Access and refresh tokens are not kept: Gatehouse calls nothing on the person's behalf.
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = env_int("OIDC_HTTP_TIMEOUT_SECONDS", 10, minimum=1)
# The redirect URI sent to providers must match the registered https:// one even if a proxy
# forgets X-Forwarded-Proto (it also makes allauth's emailed links https).
if PRODUCTION:
    ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"
# A provider button is a form whose answer redirects to the provider: browsers hold that
# redirect to the CSP form-action list, so each issuer's origin (and any origin its sign-in
# page redirects on to, OIDC_FORM_ACTION_ORIGINS) is added to it.
CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"] = [
    SELF,
    *form_action_origins(OIDC_PROVIDERS, env_list("OIDC_FORM_ACTION_ORIGINS", [])),
]

# --- Email ---------------------------------------------------------------------------------

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Gatehouse <gatehouse@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static files --------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# In development whitenoise also serves straight from the source folders, so the pages are
# styled with DEBUG off even before (or without) collectstatic.
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Internationalisation ------------------------------------------------------------------

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Logging -------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
# State changes go through services with audit events; an old version is never restored wholesale.
SIMPLE_HISTORY_REVERT_DISABLED = True
