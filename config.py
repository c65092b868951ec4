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
    upload_max_bytes = int(env.get("UPLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
    upload_max_files = int(env.get("UPLOAD_MAX_FILES", "5"))
    return {
        "APP_ENV": app_env,
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL") or default_db,
        # hide_parameters: a failed statement's log line never carries its values (password hashes).
        # No pre-ping on every checkout: transacciones pings a connection that sat idle in the pool.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False, "hide_parameters": True},
        # Largest request body (413 beyond); JSON bodies are capped lower (rutas.comun.json_body).
        # Largest request body (413 beyond): by default a full message of attachments plus its form.
        "MAX_CONTENT_LENGTH": int(env.get("MAX_CONTENT_LENGTH")
                                  or max(16 * 1024 * 1024, upload_max_bytes * upload_max_files + 1024 * 1024)),
        "MAX_JSON_BYTES": int(env.get("MAX_JSON_BYTES", str(1024 * 1024))),
        # Bearer tokens expire this many days after they are issued.
        "API_TOKEN_DAYS": int(env.get("API_TOKEN_DAYS", "90")),
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _bool(env.get("SESSION_COOKIE_SECURE"), app_env == "production"),
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "10 per minute"),
        "RATELIMIT_HEADERS_ENABLED": True,  # a 429 says when to retry (Retry-After)
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
        "UPLOAD_MAX_BYTES": upload_max_bytes,
        "UPLOAD_MAX_FILES": upload_max_files,
        # Seed 003's support API: its categories → Mesa's (unknown → General); auto-close delay.
        "SUPPORT_CATEGORIAS": env.get("SUPPORT_CATEGORIAS", "general=General,technical=Software,billing=Facturación"),
        "AUTO_CLOSE_DAYS": int(env.get("AUTO_CLOSE_DAYS", "7")),
        # Email in (correo_entrante.py): size limit, unknown senders, the IMAP mailbox fetch-email polls.
        "INBOUND_MAX_BYTES": int(env.get("INBOUND_MAX_BYTES", str(25 * 1024 * 1024))),
        "INBOUND_UNKNOWN_SENDER": (env.get("INBOUND_UNKNOWN_SENDER") or "crear").strip().lower(),
        "INBOUND_CATEGORIA": env.get("INBOUND_CATEGORIA") or "General",
        "IMAP_HOST": env.get("IMAP_HOST", ""),
        "IMAP_PORT": int(env.get("IMAP_PORT", "993")),
        "IMAP_SSL": _bool(env.get("IMAP_SSL"), True),
        "IMAP_USER": env.get("IMAP_USER") or None,
        "IMAP_PASSWORD": env.get("IMAP_PASSWORD") or None,
        "IMAP_FOLDER": env.get("IMAP_FOLDER") or "INBOX",
        # WhatsApp Cloud API (whatsapp.py); Configuración > WhatsApp overrides these. No token: channel off.
        "WHATSAPP_VERIFY_TOKEN": env.get("WHATSAPP_VERIFY_TOKEN", ""),
        "WHATSAPP_APP_SECRET": env.get("WHATSAPP_APP_SECRET", ""),
        "WHATSAPP_ACCESS_TOKEN": env.get("WHATSAPP_ACCESS_TOKEN", ""),
        "WHATSAPP_PHONE_NUMBER_ID": env.get("WHATSAPP_PHONE_NUMBER_ID", ""),
        "WHATSAPP_GRAPH_BASE": env.get("WHATSAPP_GRAPH_BASE") or "https://graph.facebook.com/v21.0",
        "WHATSAPP_TEMPLATE": env.get("WHATSAPP_TEMPLATE", ""),
        "WHATSAPP_OFFICE_HOURS": env.get("WHATSAPP_OFFICE_HOURS", ""),  # e.g. 09:00-18:00 (Mon-Fri)
        "WHATSAPP_ESCALATION_KEYWORDS": env.get(
            "WHATSAPP_ESCALATION_KEYWORDS", "agente,humano,asesor,persona,hablar con alguien"),
        "WHATSAPP_FAILURES_BEFORE_ESCALATION": int(env.get("WHATSAPP_FAILURES_BEFORE_ESCALATION", "2")),
        "WHATSAPP_TICKET_CATEGORY": env.get("WHATSAPP_TICKET_CATEGORY", ""),
        "WHATSAPP_TIMEOUT": float(env.get("WHATSAPP_TIMEOUT", "15")),
        # Issue 12: SLA alerts (`flask sla-tick --loop`) and the live event stream.
        "SLA_TICK_SECONDS": float(env.get("SLA_TICK_SECONDS", "60")),
        # "No engineer could be assigned": the admins hear it at most once per this many minutes.
        "ALERTA_SIN_CANDIDATO_MINUTOS": float(env.get("ALERTA_SIN_CANDIDATO_MINUTOS", "30")),
        "SSE_MAX_SECONDS": float(env.get("SSE_MAX_SECONDS", "55")),
        "SSE_POLL_SECONDS": float(env.get("SSE_POLL_SECONDS", "1")),
        "SSE_HEARTBEAT_SECONDS": float(env.get("SSE_HEARTBEAT_SECONDS", "15")),
        "CSAT_MAX_DIAS": int(env.get("CSAT_MAX_DIAS", "30")),  # life of the rating link
        # Issue 13: Excel exports as background jobs (exportaciones.py, `flask export-worker --loop`).
        # Up to EXPORT_SYNC_MAX_ROWS rows the panels download at once; beyond, they start a job.
        "EXPORT_THREAD": _bool(env.get("EXPORT_THREAD"), _bool(env.get("OUTBOX_THREAD"))),
        "EXPORT_DIR": env.get("EXPORT_DIR") or str(Path(instance_path) / "exportaciones"),
        "EXPORT_TTL_HOURS": float(env.get("EXPORT_TTL_HOURS", "24")),
        "EXPORT_SYNC_MAX_ROWS": int(env.get("EXPORT_SYNC_MAX_ROWS", "5000")),
        "EXPORT_POLL_SECONDS": float(env.get("EXPORT_POLL_SECONDS", "0.5")),
        "EXPORT_PROGRESS_ROWS": int(env.get("EXPORT_PROGRESS_ROWS", "5000")),
        "EXPORT_CLAIM_TIMEOUT_SECONDS": int(env.get("EXPORT_CLAIM_TIMEOUT_SECONDS", "120")),
        "EXPORT_MAX_INTENTOS": int(env.get("EXPORT_MAX_INTENTOS", "3")),
    }
