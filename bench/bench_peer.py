"""make bench-peer: Mesa next to django-helpdesk 2.6.1 on the same data, one run, ratios printed.

    .venv/bin/python bench/bench_peer.py [--tickets 10000] [--workers 2] [--requests 30] [--creates 100]
                                         [--peer-sqlite mesa|django]

The peer is installed from the package index into its own virtualenv, cached in
bench/.peer-venv (gitignored; rebuilt when the pins below change, delete it to start over).
Each run writes a minimal Django project and both databases (SQLite) into a fresh temp dir,
seeds the same number of tickets into each (Mesa through bench.bench.seed, the peer with
bulk_create and one FollowUp per ticket, spread over a year), serves both with gunicorn and
the same sync worker count, and times them interleaved, request by request, on 127.0.0.1
only. Prints a table (medians, ratio peer/Mesa) and writes it to bench/results/peer.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench import PASSWORD, WORDS, seed  # noqa: E402
from bench.servidor import gunicorn  # noqa: E402

PEER_PINS = ["django-helpdesk==2.6.1", "Django==5.2.19", "djangorestframework==3.18.3", "gunicorn==23.0.0",
             "whitenoise==6.9.0"]
PEER_VENV = ROOT / "bench" / ".peer-venv"
# Mesa's "open" work is abierto + en_progreso + en_espera; the peer's default list is status 1 + 2.
MESA_OPEN = "abierto,en_progreso,en_espera"
PER_PAGE = 25  # the peer's datatables page length; Mesa is asked for the same

SETTINGS = '''
from pathlib import Path
BASE = Path(__file__).resolve().parent.parent
SECRET_KEY = "bench-peer-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "django.contrib.sites", "django.contrib.humanize",
    "rest_framework", "django_cleanup.apps.CleanupConfig", "helpdesk",
]
SITE_ID = 1
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware", "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware", "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware", "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware", "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "peerproj.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request", "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages"]},
}]
WSGI_APPLICATION = "peerproj.wsgi.application"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE / "peer.db", "OPTIONS": SQLITE_OPTIONS}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"
STATIC_ROOT = BASE / "static"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGIN_URL = "/helpdesk/login/"
HELPDESK_TEAMS_MODE_ENABLED = False
'''

URLS = '''
from django.urls import include, path
urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]
'''

WSGI = '''
import os
from django.core.wsgi import get_wsgi_application
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peerproj.settings")
application = get_wsgi_application()
'''

# Runs inside the peer's virtualenv: argv = tickets, password, JSON list of words.
SEED = '''
import json, random, sys
from datetime import timedelta
import django
django.setup()
from django.contrib.auth import get_user_model
from django.utils import timezone
from helpdesk.models import FollowUp, Queue, Ticket

n, password, words = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
User = get_user_model()
User.objects.create_superuser("admin", "admin@bench.local", password)
engineers = [User.objects.create_user(f"ing{i}", f"ing{i}@bench.local", password, is_staff=True) for i in range(3)]
queue = Queue.objects.create(title="Soporte", slug="soporte", email_address="soporte@bench.local")
# Spread "created" over a year: switch the automatic timestamps off for the load.
Ticket._meta.get_field("created").auto_now_add = False
Ticket._meta.get_field("modified").auto_now = False
rng = random.Random(42)
now = timezone.now()
# Mesa's seed: abierto 20, en_progreso 15, en_espera 5, resuelto 20, cerrado 40 -> open 40, resolved 20, closed 40
statuses, weights = [1, 3, 4], [40, 20, 40]
for start in range(1, n + 1, 2000):
    rows = []
    for tid in range(start, min(start + 2000, n + 1)):
        created = now - timedelta(minutes=rng.randint(0, 60 * 24 * 365))
        status = rng.choices(statuses, weights=weights)[0]
        rows.append(Ticket(
            id=tid, queue=queue, title=f"{rng.choice(words).title()} {rng.choice(words)} #{tid}",
            description=" ".join(rng.choices(words, k=20)), submitter_email=f"user{rng.randrange(200)}@bench.local",
            assigned_to=rng.choice(engineers) if status != 1 or rng.random() < 0.5 else None,
            status=status, priority=rng.randint(1, 5), created=created, modified=created))
    Ticket.objects.bulk_create(rows)
    FollowUp.objects.bulk_create([FollowUp(ticket=t, date=t.created, title="Ticket Opened", comment=t.description,
                                           public=True) for t in rows])
print(json.dumps({"queue": queue.id}))
'''


def peer_venv() -> Path:
    """The peer's virtualenv with PEER_PINS installed (cached; rebuilt when the pins change)."""
    stamp = PEER_VENV / "pins.txt"
    wanted = "\n".join(PEER_PINS) + "\n"
    if stamp.exists() and stamp.read_text() == wanted:
        return PEER_VENV
    shutil.rmtree(PEER_VENV, ignore_errors=True)
    print(f"Installing the peer into {PEER_VENV.relative_to(ROOT)}: {' '.join(PEER_PINS)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_VENV / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", *PEER_PINS],
                   check=True)
    stamp.write_text(wanted)
    return PEER_VENV


# --peer-sqlite mesa (default): the pragmas Mesa's models.py sets, so that the journal mode is not
# what is compared; django: SQLite's defaults, which Django leaves alone (rollback journal, synchronous=FULL).
PEER_SQLITE = {"mesa": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                                        "PRAGMA busy_timeout=30000;"},
               "django": {}}


def peer_project(venv: Path, where: Path, n_tickets: int, sqlite: str) -> tuple[dict, int]:
    """Write, migrate, collect static and seed the peer's project in ``where``: (server env, queue id)."""
    pkg = where / "peerproj"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "settings.py").write_text(f"SQLITE_OPTIONS = {PEER_SQLITE[sqlite]!r}\n" + SETTINGS)
    (pkg / "urls.py").write_text(URLS)
    (pkg / "wsgi.py").write_text(WSGI)
    (where / "seed.py").write_text(SEED)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "peerproj.settings", "PYTHONPATH": str(where)}
    python = str(venv / "bin/python")
    for command in (["migrate", "--noinput", "-v", "0"], ["collectstatic", "--noinput", "-v", "0"]):
        subprocess.run([python, "-m", "django", *command], cwd=where, env=env, check=True)
    out = subprocess.run([python, "seed.py", str(n_tickets), PASSWORD, json.dumps(WORDS)], cwd=where, env=env,
                         check=True, capture_output=True, text=True).stdout
    return env, json.loads(out.strip().splitlines()[-1])["queue"]


def ok(r: requests.Response) -> requests.Response:
    r.raise_for_status()
    return r


def mesa_sessions(url: str) -> tuple[requests.Session, requests.Session]:
    """(API session with a Bearer token, panel session logged in through the form)."""
    api = requests.Session()
    token = ok(api.post(url + "/api/auth/token", json={"username": "admin", "password": PASSWORD})).json()["token"]
    api.headers["Authorization"] = f"Bearer {token}"
    panel = requests.Session()
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', ok(panel.get(url + "/login")).text).group(1)
    r = panel.post(url + "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf},
                   allow_redirects=False)
    assert r.status_code == 302, f"Mesa login answered {r.status_code}"
    return api, panel


def peer_session(url: str) -> requests.Session:
    """Logged in with the session (never HTTP Basic: it re-hashes the password on every request)."""
    s = requests.Session()
    login = url + "/helpdesk/login/"
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', ok(s.get(login)).text).group(1)
    r = s.post(login, data={"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": csrf},
               headers={"Referer": login}, allow_redirects=False)
    assert r.status_code == 302, f"peer login answered {r.status_code}"
    s.headers.update({"X-CSRFToken": s.cookies["csrftoken"], "Referer": url + "/helpdesk/tickets/"})
    return s


def datatables(query: dict, start: int = 0) -> str:
    """The URL the peer's list page calls for its rows (its query travels base64-encoded)."""
    b64 = base64.b64encode(json.dumps(query).encode()).decode()
    return f"/helpdesk/datatables_ticket_list/{b64}?draw=1&start={start}&length={PER_PAGE}"


PEER_OPEN = {"filtering": {"status__in": [1, 2]}, "sorting": "created", "search_string": "", "sortreverse": False}
PEER_ALL = {"filtering": {}, "sorting": "created", "search_string": "", "sortreverse": False}


def peer_search(word: str) -> dict:
    """What the peer's list page builds from ``?q=word`` (staff.ticket_list)."""
    return {"filtering": {}, "filtering_null": {}, "sorting": "created", "sortreverse": None, "search_string": word}


def interleaved(n: int, mesa: Callable[[int], object], peer: Callable[[int], object]) -> tuple[list, list]:
    """Milliseconds of ``n`` calls of each, alternating sides call by call (who goes first alternates too).

    Each timed call comes right after an untimed one of its own side: on the 2-core VM a request
    that reaches a server left idle for 0.1 s took 6-7 ms more than one right after another (the
    bare Flask route: 1.3 -> 8 ms; after 2.5 s idle, 50 ms), a wake-up that weighed on the fast
    side's median (Mesa's one ticket after the peer's 2.3 s REST call: 2.7 -> 15.6 ms) and hardly
    on the slow side's. With the untimed call before it, 2.1-2.4 ms."""
    times: tuple[list, list] = ([], [])
    for i in range(n):
        order = ((0, mesa), (1, peer)) if i % 2 == 0 else ((1, peer), (0, mesa))
        for side, call in order:
            call(i)  # wakes this side's server (untimed)
            t0 = time.perf_counter()
            call(i)
            times[side].append((time.perf_counter() - t0) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=30, help="interleaved requests per side and measurement")
    parser.add_argument("--creates", type=int, default=100, help="API creates per side (one client)")
    parser.add_argument("--peer-sqlite", choices=sorted(PEER_SQLITE), default="mesa",
                        help="the peer's SQLite pragmas: Mesa's (WAL, synchronous=NORMAL) or Django's defaults")
    args = parser.parse_args()

    venv = peer_venv()
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="mesa-bench-peer-"))
    try:
        print(f"Seeding {args.tickets:,} tickets into each side (SQLite in {tmp}) ...", flush=True)
        t0 = time.perf_counter()
        peer_env, queue_id = peer_project(venv, tmp / "peer", args.tickets, args.peer_sqlite)
        print(f"  peer: migrated, static collected and seeded in {time.perf_counter() - t0:.1f} s", flush=True)
        mesa_seconds = seed(f"sqlite:///{tmp}/mesa.db", args.tickets)
        print(f"  Mesa: seeded in {mesa_seconds:.1f} s", flush=True)
        mesa_env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/mesa.db", "SECRET_KEY": "bench",
                    "APP_ENV": "production", "SESSION_COOKIE_SECURE": "0",  # plain HTTP on loopback
                    "LOGIN_RATE_LIMIT": "1000 per minute", "OUTBOX_THREAD": "0"}
        with ExitStack() as servers:
            # Mesa plus the bare Flask route of bench/app_bench.py: the HTTP floor printed under the table.
            mesa_url, _ = servers.enter_context(gunicorn(mesa_env, workers=args.workers,
                                                         app="bench.app_bench:create_app()"))
            quiet = {**peer_env, "PYTHONWARNINGS": "ignore::RuntimeWarning"}  # its dashboard's naive-datetime noise
            peer_url, _ = servers.enter_context(gunicorn(
                quiet, workers=args.workers, probe="/helpdesk/login/", app="peerproj.wsgi:application",
                cwd=tmp / "peer", venv=venv))
            rows = measure(args, mesa_url, peer_url, queue_id)
            floor = http_floor(mesa_url, args.creates)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    table = ["| measurement | Mesa ms | peer ms | ratio (peer/Mesa) |", "|---|---|---|---|"]
    table += [f"| {label} | {m:.1f} | {p:.1f} | {p / m:.1f}× |" for label, m, p in rows]
    header = (f"Mesa vs django-helpdesk 2.6.1 · {args.tickets:,} tickets each · SQLite (peer pragmas: "
              f"{args.peer_sqlite}) · gunicorn {args.workers} sync workers each · medians of {args.requests} "
              f"interleaved requests · {os.cpu_count()} CPUs · "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · load average {load_before:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after")
    create_ms = rows[-1][2]
    text = header + "\n\n" + "\n".join(table) + "\n\n" + (
        f"The floor on Mesa's server (a bare Flask JSON route, no database, one client, {args.creates} calls, mean): "
        f"GET {floor[0]:.2f} ms, POST of a ticket's JSON {floor[1]:.2f} ms. The floor of a creation that sends "
        f"Mesa's own SQL (one real creation's statements replayed on the driver, no Python above it: "
        f"`/_bare/crear`): {floor[2]:.2f} ms, {create_ms / floor[2]:.1f}× the peer. 10× the peer's creation would be "
        f"{create_ms / 10:.2f} ms per ticket.\n")
    print("\n" + text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "peer.md").write_text(text)
    return 0


def http_floor(url: str, n: int) -> tuple[float, float, float]:
    """Mean ms from one client of a GET and of a JSON POST to the bare Flask route
    (bench/app_bench.py), what any request to Mesa's server costs before Mesa does anything; and
    of ``/_bare/crear``, a creation's SQL with nothing of Mesa's Python (as Mesa's admin)."""
    s = requests.Session()
    token = ok(s.post(url + "/api/auth/token", json={"username": "admin", "password": PASSWORD})).json()["token"]
    body = {"titulo": "bench peer", "descripcion": "bench load", "categoria": "General", "prioridad": "media"}
    cabecera = {"Authorization": f"Bearer {token}"}
    means = []
    for call in (lambda: s.get(url + "/_bare/ticket", timeout=60), lambda: s.post(url + "/_bare/ticket", json=body, timeout=60),
                 lambda: s.post(url + "/_bare/crear", json=body, headers=cabecera, timeout=60)):
        for _ in range(10):
            ok(call())
        t0 = time.perf_counter()
        for _ in range(n):
            ok(call())
        means.append((time.perf_counter() - t0) * 1000 / n)
    return means[0], means[1], means[2]


def measure(args, mesa_url: str, peer_url: str, queue_id: int) -> list[tuple[str, float, float]]:
    api, panel = mesa_sessions(mesa_url)
    peer = peer_session(peer_url)
    n = args.requests
    rng = random.Random(7)
    ids = [rng.randint(1, args.tickets) for _ in range(n)]
    words = [rng.choice(WORDS) for _ in range(n)]
    offset = min(5000, args.tickets // 2 // PER_PAGE * PER_PAGE)  # 5,000 unless a small run has fewer
    offset_page = offset // PER_PAGE + 1
    rows: list[tuple[str, float, float]] = []

    def mget(path: str, s: requests.Session = api) -> requests.Response:
        return ok(s.get(mesa_url + path, timeout=120))

    def pget(path: str) -> requests.Response:
        return ok(peer.get(peer_url + path, timeout=120))

    # Both sides must be answering with the rows asked for, not with a login page or an empty list.
    mesa_open = mget(f"/api/todos-tickets?estado={MESA_OPEN}&per_page={PER_PAGE}").json()
    peer_open = pget(datatables(PEER_OPEN)).json()
    assert len(mesa_open["items"]) == len(peer_open["data"]) == PER_PAGE, "a list page is not full"
    assert len(pget(datatables(PEER_ALL, offset)).json()["data"]) == PER_PAGE, "peer offset page is empty"
    assert len(mget(f"/api/todos-tickets?page={offset_page}&per_page={PER_PAGE}").json()["items"]) == PER_PAGE
    assert "TKT-" in mget(f"/tickets/admin?estado={MESA_OPEN}&per_page={PER_PAGE}", panel).text
    print(f"  open tickets: Mesa {mesa_open['total']:,}, peer {peer_open['recordsTotal']:,}", flush=True)
    for _ in range(3):  # warm every worker of both
        mget("/api/todos-tickets")
        pget(datatables(PEER_OPEN))

    def row(label: str, mesa: Callable[[int], object], peer_call: Callable[[int], object]) -> None:
        m, p = interleaved(n, mesa, peer_call)
        rows.append((label, statistics.median(m), statistics.median(p)))
        print(f"  {label}: Mesa {rows[-1][1]:.1f} ms · peer {rows[-1][2]:.1f} ms", flush=True)

    row("Open-ticket list, page 1, panel (Mesa /tickets/admin HTML with rows; peer shell + datatables call)",
        lambda i: mget(f"/tickets/admin?estado={MESA_OPEN}&per_page={PER_PAGE}", panel),
        lambda i: (pget("/helpdesk/tickets/"), pget(datatables(PEER_OPEN))))
    row("Open-ticket list, page 1, rows as JSON (Mesa /api/todos-tickets; peer datatables call)",
        lambda i: mget(f"/api/todos-tickets?estado={MESA_OPEN}&per_page={PER_PAGE}"),
        lambda i: pget(datatables(PEER_OPEN)))
    row(f"Page at offset {offset:,}, every ticket, JSON (Mesa /api/todos-tickets?page=; peer datatables start=)",
        lambda i: mget(f"/api/todos-tickets?page={offset_page}&per_page={PER_PAGE}"),
        lambda i: pget(datatables(PEER_ALL, offset)))
    row("Statistics (Mesa /api/estadisticas; peer /helpdesk/dashboard/)",
        lambda i: mget("/api/estadisticas"), lambda i: pget("/helpdesk/dashboard/"))
    row("One ticket, JSON (Mesa /api/tickets/<id>; peer REST /helpdesk/api/tickets/<id>/)",
        lambda i: mget(f"/api/tickets/{ids[i]}"), lambda i: pget(f"/helpdesk/api/tickets/{ids[i]}/"))
    row("One ticket, page HTML (Mesa /tickets/<número>; peer /helpdesk/tickets/<id>/)",
        lambda i: mget(f"/tickets/TKT-{ids[i]:06d}", panel), lambda i: pget(f"/helpdesk/tickets/{ids[i]}/"))
    row("Text search, a title word, page 1 as JSON (Mesa ?q=; peer datatables search_string)",
        lambda i: mget(f"/api/todos-tickets?q={words[i]}&per_page={PER_PAGE}"),
        lambda i: pget(datatables(peer_search(words[i]))))

    def mesa_create(i: int) -> None:
        r = api.post(mesa_url + "/api/tickets", json={"titulo": f"bench peer {i}", "descripcion": "bench load",
                                                      "categoria": "General", "prioridad": "media"}, timeout=120)
        assert r.status_code == 201, r.text

    def peer_create(i: int) -> None:
        r = peer.post(peer_url + "/helpdesk/api/tickets/", json={
            "queue": queue_id, "title": f"bench peer {i}", "description": "bench load",
            "submitter_email": "bench@bench.local", "priority": 3}, timeout=120)
        assert r.status_code == 201, r.text

    m, p = interleaved(args.creates, mesa_create, peer_create)
    mean_m, mean_p = statistics.mean(m), statistics.mean(p)
    rows.append((f"API create, one client, mean ms per ticket ({args.creates} each: Mesa {1000 / mean_m:.0f}/s, "
                 f"peer {1000 / mean_p:.0f}/s)", mean_m, mean_p))
    print(f"  {rows[-1][0]}: Mesa {mean_m:.1f} ms · peer {mean_p:.1f} ms", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
