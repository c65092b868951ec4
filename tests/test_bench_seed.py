"""The benchmark's bulk seed (bench/bench.py): whatever it bypasses to be fast, the full-text index
of busqueda.py ends up as the database's own triggers would have written it, and stays live."""

from __future__ import annotations

import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models import Ticket, Usuario, db
from schemas import TicketCreate, TicketFilters


def _plano(texto: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", texto) if not unicodedata.combining(c)).lower()


def _todos(admin, q: str) -> tuple[list[int], int]:
    import tickets

    f = TicketFilters(q=q, orden="-fecha_creacion", per_page=100)
    pagina = tickets.listar(admin, f, contexto="prueba")
    ids = [t.id for t in pagina.items]
    for _ in range(20):
        if pagina.siguiente is None:
            break
        pagina = tickets.listar(admin, f.model_copy(update={"cursor": pagina.siguiente}), contexto="prueba")
        ids += [t.id for t in pagina.items]
    return ids, pagina.total


def test_bench_seed_leaves_every_ticket_searchable_and_the_triggers_on(fresh_database_url):
    import tickets
    from app import create_app
    from bench.bench import seed

    seed(fresh_database_url, 300)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_database_url, "SECRET_KEY": "t"})
    with app.app_context():
        admin = db.session.execute(select(Usuario).filter_by(username="admin")).scalar_one()
        todos = db.session.execute(select(Ticket).options(selectinload(Ticket.usuario))).scalars().all()
        assert len(todos) == 300
        for palabra in ("vpn", "telefono", "portatil", "impresora"):
            esperado = {t.id for t in todos if palabra in _plano(
                f"{t.titulo} {t.descripcion} {t.usuario.nombre} {t.usuario.username}").split()}
            ids, total = _todos(admin, palabra)
            assert 0 < len(esperado) < 300 and sorted(ids) == sorted(esperado) and total == len(esperado), palabra
        # the triggers the seed set aside are back: a new ticket is found at once
        nuevo = tickets.crear_ticket(TicketCreate(titulo="Zanahoria en el escáner", descripcion="Nada más.",
                                                  categoria="General", prioridad="baja"), usuario=admin)
        db.session.commit()
        assert _todos(admin, "zanahoria")[0] == [nuevo.id]
        db.session.remove()
        db.engine.dispose()


def _esquema(url: str) -> dict:
    """Every index (name, columns) and foreign key (name, target) of the tables the seed loads."""
    from sqlalchemy import create_engine, inspect

    from bench.bench import TABLAS_DERIVADAS, TABLAS_MASIVAS

    engine = create_engine(url)
    inspector = inspect(engine)
    tablas = [t for t in TABLAS_MASIVAS + TABLAS_DERIVADAS if inspector.has_table(t)]
    out = {t: (sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(t)),
               sorted((k["name"], k["referred_table"], tuple(k["constrained_columns"]))
                      for k in inspector.get_foreign_keys(t))) for t in tablas}
    engine.dispose()
    return out


def test_bench_seed_gives_back_every_index_and_foreign_key_it_set_aside(fresh_database_url):
    from flask_migrate import upgrade

    from app import create_app
    from bench.bench import ROOT, seed

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": fresh_database_url, "SECRET_KEY": "t"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()
    antes = _esquema(fresh_database_url)
    assert antes["tickets"][0] and antes["tickets"][1]
    seed(fresh_database_url, 50)
    assert _esquema(fresh_database_url) == antes
