"""Test settings: the real settings, with fast password hashing and an isolated var/ folder.

The database and broker still come from DATABASE_URL and CELERY_BROKER_URL, so the same suite
runs on SQLite with the filesystem broker and on PostgreSQL with Redis.
"""

import os
import tempfile

os.environ.setdefault(
    "GATEHOUSE_VAR_DIR", os.path.join(tempfile.gettempdir(), f"gatehouse-test-{os.getuid()}")
)

from portal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 - whitenoise warns if missing

# A file, not the shared in-memory database: concurrency tests must see SQLite's real locking
# (WAL + BEGIN IMMEDIATE + busy timeout), not shared-cache table locks that fail at once.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # One file per test run, so runs side by side don't share (and corrupt) a database.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")  # noqa: F405
    }

# Tests that exercise anchoring point this at their own temporary file.
AUDIT_ANCHOR_FILE = ""
AUDIT_SIGNING_KEY_FILE = str(VAR_DIR / "audit-signing-key.pem")  # noqa: F405

# Tasks run in the test process when enqueued (still only on commit). Tests that prove the real
# broker path start a worker and switch this off (tests/portal/test_celery_worker.py).
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
PROVISIONING_RETRY_SECONDS = 0
DEPLOYMENT_CALLBACK_RETRY_SECONDS = 0
DEPLOYMENT_CALLBACK_HOSTS = ["127.0.0.1", "localhost"]  # the tests' own receivers

# Every browser journey signs in from 127.0.0.1 against one live server, several people per
# journey; allauth's per-IP sign-in limit (30 a minute) is for real traffic, not for a suite.
ACCOUNT_RATE_LIMITS = {"login": "1000/m/ip", "login_failed": "1000/m/ip,100/5m/key"}

# Threads in the concurrency tests and the live server open connections of their own; closing
# them at each request's end (as before persistent connections) lets the test database be
# dropped at the end of a PostgreSQL run.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
