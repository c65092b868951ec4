"""Configuration: defaults, then the environment (or ``.env``), then a test's overrides."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def load_config(instance_path: str) -> dict:
    """Read settings from the environment; ``.env`` fills in what the environment lacks."""
    load_dotenv(BASE_DIR / ".env", override=False)
    env = os.environ
    app_env = env.get("APP_ENV", "development")
    secret = env.get("SECRET_KEY", "")
    if not secret:
        if app_env == "production":
            raise RuntimeError("SECRET_KEY must be set when APP_ENV=production")
        secret = "dev-only-insecure-key"
    default_db = "sqlite:///" + str(Path(instance_path) / "mesa_de_ayuda.db")
    return {
        "APP_ENV": app_env,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL") or default_db,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), app_env == "production"),
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "10 per minute"),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        "MAIL_SERVER": env.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(env.get("MAIL_PORT", "25")),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _bool(env.get("MAIL_USE_TLS")),
        "MAIL_USE_SSL": _bool(env.get("MAIL_USE_SSL")),
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER", "Mesa de Ayuda <soporte@localhost>"),
        "TICKETS_NOTIFY_EMAIL": env.get("TICKETS_NOTIFY_EMAIL", ""),
        "APP_BASE_URL": env.get("APP_BASE_URL", "http://127.0.0.1:5000"),
        "DEFAULT_PHONE_REGION": env.get("DEFAULT_PHONE_REGION", "ES"),
        "APP_TIMEZONE": env.get("APP_TIMEZONE") or "UTC",
        "BABEL_DEFAULT_TIMEZONE": env.get("APP_TIMEZONE") or "UTC",
        # The outbox (outbox.py): who sends, how often, how many tries, how long between them.
        "OUTBOX_THREAD": _bool(env.get("OUTBOX_THREAD")),
        "OUTBOX_POLL_SECONDS": float(env.get("OUTBOX_POLL_SECONDS", "5")),
        "OUTBOX_MAX_INTENTOS": int(env.get("OUTBOX_MAX_INTENTOS", "6")),
        "OUTBOX_BACKOFF_SECONDS": float(env.get("OUTBOX_BACKOFF_SECONDS", "30")),
        "OUTBOX_BACKOFF_MAX_SECONDS": float(env.get("OUTBOX_BACKOFF_MAX_SECONDS", "3600")),
        "OUTBOX_CLAIM_TIMEOUT_SECONDS": int(env.get("OUTBOX_CLAIM_TIMEOUT_SECONDS", "600")),
        "MAIL_TIMEOUT": float(env.get("MAIL_TIMEOUT", "30")),
        # Attachments (adjuntos.py): stored outside the web root, content-addressed.
        "UPLOAD_DIR": env.get("UPLOAD_DIR") or str(Path(instance_path) / "adjuntos"),
        "UPLOAD_MAX_BYTES": int(env.get("UPLOAD_MAX_BYTES", str(10 * 1024 * 1024))),
        "UPLOAD_MAX_FILES": int(env.get("UPLOAD_MAX_FILES", "5")),
        # Issue 12: SLA alerts (`flask sla-tick --loop`) and the live event stream.
        "SLA_TICK_SECONDS": float(env.get("SLA_TICK_SECONDS", "60")),
        "SSE_MAX_SECONDS": float(env.get("SSE_MAX_SECONDS", "55")),
        "SSE_POLL_SECONDS": float(env.get("SSE_POLL_SECONDS", "1")),
        "SSE_HEARTBEAT_SECONDS": float(env.get("SSE_HEARTBEAT_SECONDS", "15")),
        "CSAT_MAX_DIAS": int(env.get("CSAT_MAX_DIAS", "30")),  # life of the rating link
    }
