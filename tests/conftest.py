"""Fixtures: the app on SQLite or on a throwaway PostgreSQL (MESA_TEST_DB), factories, clients.

The schema is built once per run through the migrations (so they are tested too); every
test starts from empty tables plus the categories the first migration seeds.
"""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app  # noqa: E402
from auth import limiter  # noqa: E402
from models import Base, Categoria, Ingeniero, Usuario, db  # noqa: E402

pytest_plugins = ["smtp_fixture"]  # smtp_server: a real SMTP server on loopback (email tests)
DEFAULT_CATEGORIAS = ["General", "Software", "Hardware", "Redes", "Accesos y Cuentas", "Facturación"]
BACKEND = os.environ.get("MESA_TEST_DB", "sqlite")
_ARCHIVOS: str | None = None  # this run's uploads and exports (pytest_sessionstart)


def pytest_sessionstart(session):
    """Build the UI catalogs (.mo) when missing or stale, so a bare ``pytest`` sees them too.
    Uploads and Excel files go to this run's own directory, not the repository's instance/:
    `make test` runs the SQLite and PostgreSQL suites at the same time (one would remove the
    other's files as orphans). Set in the environment, so the CLI subprocesses use it too."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in (ROOT / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as src:
                catalog = read_po(src)
            with mo.open("wb") as dst:
                write_mo(dst, catalog)
    global _ARCHIVOS
    _ARCHIVOS = tempfile.mkdtemp(prefix=f"mesa-test-{BACKEND}-")
    os.environ.setdefault("UPLOAD_DIR", os.path.join(_ARCHIVOS, "adjuntos"))
    os.environ.setdefault("EXPORT_DIR", os.path.join(_ARCHIVOS, "exportaciones"))


def pytest_sessionfinish(session, exitstatus):
    if _ARCHIVOS is not None:
        shutil.rmtree(_ARCHIVOS, ignore_errors=True)


def pytest_report_header(config):
    return f"database backend: {BACKEND}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if BACKEND == "postgresql":
        from pg_cluster import Cluster

        cluster = Cluster()
        url = cluster.start()
        try:
            _migrate(url)
            yield url
        finally:
            cluster.stop()
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        _migrate(url)
        yield url


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


def _reset(engine) -> None:
    """Empty every table that has rows and seed the default categories, in one transaction.

    One query finds the tables with rows (after the first few tests, most are empty), so each
    test pays for what the previous one wrote, not for ~30 tables. On PostgreSQL the rows go
    with DELETE (TRUNCATE rewrites every table's files and takes an exclusive lock: ~250 ms
    per test) and every sequence restarts at 1, as TRUNCATE ... RESTART IDENTITY did.
    """
    from sqlalchemy.exc import OperationalError

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]  # children before parents
    con_filas = " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in tables)
    # A previous browser test's request thread (e.g. an SSE stream still polling) may hold a read
    # lock for a moment: PostgreSQL may pick the DELETE as a deadlock victim. Try again.
    for intento in range(5):
        try:
            with engine.begin() as conn:
                llenas = set(conn.execute(text(con_filas)).scalars())
                for name in tables:
                    if name in llenas:
                        conn.execute(text(f"DELETE FROM {name}"))
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT setval(c.oid, 1, false) FROM pg_class c WHERE c.relkind = 'S' "
                                      "AND c.relnamespace = 'public'::regnamespace"))
                conn.execute(Categoria.__table__.insert(),
                             [{"nombre": n, "activa": True} for n in DEFAULT_CATEGORIAS])
            break
        except OperationalError:
            if intento == 4:
                raise
            time.sleep(1)


class FreshContextClient(FlaskClient):
    """Each request runs in its own app context, as in production: a fresh ``g`` (so
    Flask-Login re-reads the caller) and a fresh database session. The test's own session
    is separate; call ``db.session.expire_all()`` before reading what a request changed."""

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture(scope="session")
def _app_de_la_sesion(database_url):
    """One app for the whole run: building one costs ~200 ms (werkzeug compiles ~120 URL rules),
    ~990 times. ``app`` gives every test this app with the configuration it had when built."""
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "SSE_MAX_SECONDS": 3,  # a browser test's live stream ends soon after its test
    })
    app.test_client_class = FreshContextClient
    # The limiter is one object for every app; a test that builds its own app re-initializes it.
    return app, copy.deepcopy(dict(app.config)), dict(vars(limiter))


@pytest.fixture
def app(_app_de_la_sesion):
    app, config, estado_del_limitador = _app_de_la_sesion
    # What a previous test changed (app.config[...] = ..., another create_app) is put back.
    app.config.clear()
    app.config.update(copy.deepcopy(config))
    vars(limiter).update(estado_del_limitador)
    limiter.reset()
    with app.app_context():
        _reset(db.engine)
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


_seq = itertools.count(1)


@pytest.fixture
def make_user(app):
    def factory(rol: str = "usuario", password: str = "secreto123", **overrides) -> Usuario:
        n = next(_seq)
        usuario = Usuario(username=overrides.pop("username", f"{rol}{n}"), nombre=overrides.pop("nombre", f"{rol.title()} {n}"),
                          email=overrides.pop("email", f"{rol}{n}@example.test"), rol=rol, **overrides)
        usuario.set_password(password)
        db.session.add(usuario)
        if rol == "ingeniero":
            db.session.add(Ingeniero(usuario=usuario, especialidad="General", disponible=True))
        db.session.commit()
        return usuario

    return factory


@pytest.fixture
def make_ticket(app):
    import tickets
    from schemas import TicketCreate

    def factory(usuario: Usuario, ingeniero: Usuario | None = None, estado: str = "abierto", **overrides):
        data = {"titulo": "Impresora no imprime", "descripcion": "Sale en blanco.", "categoria": "Hardware",
                "prioridad": "media", **overrides}
        ticket = tickets.crear_ticket(TicketCreate(**data), usuario=usuario)
        if ingeniero is not None:
            ticket.ingeniero = ingeniero.ingeniero
            db.session.flush()
        path = {"abierto": [], "en_progreso": ["en_progreso"], "en_espera": ["en_progreso", "en_espera"],
                "resuelto": ["en_progreso", "resuelto"], "cerrado": ["en_progreso", "resuelto", "cerrado"]}[estado]
        if path:
            actor = ingeniero
            if actor is None:
                actor = db.session.query(Usuario).filter_by(rol="admin").first()
            for step in path:
                tickets.cambiar_estado(ticket, actor, step)
        db.session.commit()
        return ticket

    return factory


class ApiClient:
    """A test client that authenticates with a Bearer token, like the mobile app does."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def open(self, method: str, path: str, json=None, **kwargs):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, json=json, headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.open("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.open("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.open("PUT", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.open("DELETE", path, **kw)


@pytest.fixture
def api(app, client):
    """``api(user)`` gives a Bearer-authenticated client for ``user``; ``api(None)`` none."""
    import usuarios

    def factory(user: Usuario | None) -> ApiClient:
        if user is None:
            return ApiClient(app.test_client(), None)
        _, clear = usuarios.emitir_token(user)
        db.session.commit()
        return ApiClient(app.test_client(), clear)

    return factory


@pytest.fixture
def login(app):
    """``login(user, password)`` gives a session-authenticated test client and its CSRF token."""

    def factory(user: Usuario, password: str = "secreto123"):
        c = app.test_client()
        page = c.get("/login")
        token = _csrf_from(page.get_data(as_text=True))
        resp = c.post("/login", data={"username": user.username, "password": password, "csrf_token": token})
        assert resp.status_code == 302, resp.get_data(as_text=True)
        csrf = c.get("/api/auth/csrf").get_json()["csrf_token"]
        return c, csrf

    return factory


def _csrf_from(html: str) -> str:
    import re

    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


@pytest.fixture
def roles(make_user):
    """The cast of the access matrix: two usuarios, two engineers, an admin."""
    return {
        "admin": make_user("admin", username="admin_t"),
        "owner": make_user("usuario", username="owner"),
        "other_user": make_user("usuario", username="other"),
        "engineer": make_user("ingeniero", username="eng_a"),
        "other_engineer": make_user("ingeniero", username="eng_b"),
    }


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    """One Debian chromium for the whole run, shared by every browser test module (Playwright's
    sync API allows one at a time)."""
    import shutil

    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is not installed: run `make system-deps` (apt-get install chromium)")
    with sync_playwright() as p:
        navegador = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield navegador
        navegador.close()


@pytest.fixture
def fresh_database_url(database_url):
    """An empty database of the same backend as the run (for upgrade tests)."""
    if database_url.startswith("sqlite"):
        path = ROOT / "instance" / f"upgrade-{uuid.uuid4().hex[:8]}.db"
        path.parent.mkdir(exist_ok=True)
        yield f"sqlite:///{path}"
        path.unlink(missing_ok=True)
        return
    name = f"upgrade_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    base = database_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()
