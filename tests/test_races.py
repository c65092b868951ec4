"""Races: state-changing endpoints against themselves and their neighbours, with real threads
on the test client (SQLite or PostgreSQL, MESA_TEST_DB). Invariants: no 5xx; of N identical
moves exactly one wins and the rest are 409; the history is one consistent chain (each row's
``antes`` is the previous ``despues``), the ticket's dates match its final estado, and no
message is queued twice. Check-then-insert creates (tags, usernames, categories) never 500.
"""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import func, select

from models import Categoria, Envio, Etiqueta, Evento, Ticket, Usuario, db


def _race(calls) -> list:
    """Run each zero-argument callable in its own thread, all released at once."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def _historia_estado(ticket_id: int) -> list[Evento]:
    db.session.expire_all()
    return list(db.session.execute(select(Evento).where(Evento.ticket_id == ticket_id, Evento.campo == "estado")
                                   .order_by(Evento.id)).scalars())


def _sin_envios_duplicados(ticket_id: int) -> None:
    rows = db.session.execute(select(Envio.tipo, Envio.destinatarios, Envio.asunto)
                              .where(Envio.ticket_id == ticket_id)).all()
    assert not [k for k, n in Counter(rows).items() if n > 1], rows


def _cadena_consistente(ticket: Ticket, eventos: list[Evento], inicial: str) -> None:
    anterior = inicial
    for e in eventos:
        assert e.antes == anterior, [(x.antes, x.despues) for x in eventos]
        anterior = e.despues
    db.session.refresh(ticket)
    assert ticket.estado == anterior
    assert (ticket.fecha_resolucion is not None) == (ticket.estado in ("resuelto", "cerrado"))


def test_ten_identical_moves_one_winner_one_history_row(app, api, make_user, make_ticket):
    owner, eng, admin = make_user(), make_user("ingeniero"), make_user("admin")
    t = make_ticket(owner, eng)
    envios_antes = db.session.scalar(select(func.count()).select_from(Envio).where(Envio.ticket_id == t.id))
    clients = [api(admin if i % 2 else eng) for i in range(10)]
    url = f"/api/tickets/{t.id}/estado"
    res = _race([lambda c=c: c.put(url, json={"estado": "en_progreso"}) for c in clients])
    codes = sorted(r.status_code for r in res)
    assert codes == [200] + [409] * 9, codes
    for r in res:
        if r.status_code == 409:
            assert "en_progreso" in r.get_json()["error"]["message"]
    eventos = _historia_estado(t.id)
    assert [(e.antes, e.despues) for e in eventos] == [("abierto", "en_progreso")]
    _cadena_consistente(t, eventos, "abierto")
    _sin_envios_duplicados(t.id)
    envios = db.session.scalar(select(func.count()).select_from(Envio).where(Envio.ticket_id == t.id))
    assert envios - envios_antes <= 1  # the one move's notification at most


def test_resolve_and_hold_at_once_leave_a_consistent_ticket(app, api, make_user, make_ticket):
    owner, eng, admin = make_user(), make_user("ingeniero"), make_user("admin")
    t = make_ticket(owner, eng, estado="en_progreso")
    url = f"/api/tickets/{t.id}/estado"
    calls = []
    for i in range(8):
        c = api(admin if i % 2 else eng)
        calls.append(lambda c=c, e=("resuelto" if i % 2 else "en_espera"): c.put(url, json={"estado": e}))
    res = _race(calls)
    assert all(r.status_code in (200, 409) for r in res), [r.status_code for r in res]
    ganadores = sum(r.status_code == 200 for r in res)
    eventos = _historia_estado(t.id)
    assert len(eventos) - 1 == ganadores  # one row per accepted move (+ the fixture's first move)
    _cadena_consistente(t, eventos[1:], "en_progreso")
    _sin_envios_duplicados(t.id)


def test_assign_edit_and_move_race_keep_history_consistent(app, api, make_user, make_ticket):
    owner, eng, eng2, admin = make_user(), make_user("ingeniero"), make_user("ingeniero"), make_user("admin")
    t = make_ticket(owner, eng)
    url = f"/api/tickets/{t.id}"
    eng2_id = eng2.ingeniero.id
    calls = []
    for i in range(3):
        a = api(admin)
        calls.append(lambda a=a: a.put(url + "/asignar", json={"ingeniero_id": eng2_id}))
        calls.append(lambda a=a, i=i: a.put(url, json={"titulo": f"Nuevo título {i}"}))
        calls.append(lambda a=a: a.put(url + "/estado", json={"estado": "en_progreso"}))
    res = _race(calls)
    assert all(r.status_code in (200, 409) for r in res), [(r.status_code, r.get_json()) for r in res]
    asignaciones = [r for r in res[0::3] if r.status_code == 200]
    titulos = [r for r in res[1::3] if r.status_code == 200]
    movimientos = [r for r in res[2::3] if r.status_code == 200]
    # A request that lost to a neighbour is a 409 (the client rereads and retries): at most one
    # of each identical change, at least one change overall, and the row says what won.
    assert len(asignaciones) <= 1 and len(movimientos) <= 1
    assert asignaciones or titulos or movimientos
    db.session.expire_all()
    eventos = db.session.execute(select(Evento.campo).where(Evento.ticket_id == t.id)).scalars().all()
    assert eventos.count("ingeniero") == len(asignaciones)
    assert eventos.count("estado") == len(movimientos)
    assert eventos.count("titulo") == len(titulos)
    db.session.refresh(t)
    assert (t.ingeniero_id == eng2_id) == bool(asignaciones)
    assert (t.estado == "en_progreso") == bool(movimientos)


def test_concurrent_creates_with_the_same_new_tag(app, api, make_user):
    users = [make_user() for _ in range(8)]
    clients = [api(u) for u in users]
    res = _race([lambda c=c: c.post("/api/tickets", json={
        "titulo": "t", "descripcion": "d", "categoria": "General", "etiquetas": ["recién-creada", "vpn"]})
        for c in clients])
    assert [r.status_code for r in res] == [201] * 8, [r.get_json() for r in res]
    db.session.expire_all()
    nombres = db.session.execute(select(Etiqueta.nombre)).scalars().all()
    assert sorted(nombres) == ["recién-creada", "vpn"]


def test_concurrent_same_username_is_one_201_and_409s(app, api, make_user, caplog):
    admin = make_user("admin")
    clients = [api(admin) for _ in range(8)]
    res = _race([lambda c=c, i=i: c.post("/api/usuarios", json={
        "username": "carrera", "nombre": "Carrera", "email": f"carrera{i}@example.test",
        "password": "UnaClaveLarga123", "rol": "usuario"}) for i, c in enumerate(clients)])
    codes = sorted(r.status_code for r in res)
    assert codes == [201] + [409] * 7, codes
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Usuario).where(Usuario.username == "carrera")) == 1
    assert "scrypt:" not in caplog.text and "pbkdf2:" not in caplog.text  # no hash in any log line


def test_concurrent_same_category_is_one_201_and_409s(app, api, make_user):
    admin = make_user("admin")
    clients = [api(admin) for _ in range(8)]
    res = _race([lambda c=c: c.post("/api/categorias", json={"nombre": "Impresoras 3D"}) for c in clients])
    codes = sorted(r.status_code for r in res)
    assert codes == [201] + [409] * 7, codes
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Categoria)
                             .where(Categoria.nombre == "Impresoras 3D")) == 1


def test_concurrent_replies_and_notes_all_land(app, api, make_user, make_ticket):
    owner, eng = make_user(), make_user("ingeniero")
    t = make_ticket(owner, eng, estado="en_progreso")
    url = f"/api/tickets/{t.id}"
    calls = []
    for i in range(4):
        o, e = api(owner), api(eng)
        calls.append(lambda o=o, i=i: o.post(url + "/mensajes", json={"cuerpo": f"cliente {i}"}))
        calls.append(lambda e=e, i=i: e.post(url + "/mensajes", json={"cuerpo": f"soporte {i}"}))
        calls.append(lambda e=e, i=i: e.put(url + "/notas", json={"nota": f"nota {i}"}))
    res = _race(calls)
    assert all(r.status_code in (200, 201) for r in res), [(r.status_code, r.get_json()) for r in res]
    db.session.expire_all()
    from models import Mensaje, NotaInterna
    assert db.session.scalar(select(func.count()).select_from(Mensaje).where(Mensaje.ticket_id == t.id)) == 8
    assert db.session.scalar(select(func.count()).select_from(NotaInterna).where(NotaInterna.ticket_id == t.id)) == 4


def test_reply_racing_a_close_never_lands_on_a_closed_ticket(app, api, make_user, make_ticket):
    owner, eng = make_user(), make_user("ingeniero")
    t = make_ticket(owner, eng, estado="resuelto")
    url = f"/api/tickets/{t.id}"
    o1, o2 = api(owner), api(owner)
    res = _race([lambda: o1.put(url + "/estado", json={"estado": "cerrado"}),
                 lambda: o2.post(url + "/mensajes", json={"cuerpo": "una cosa más"})])
    assert res[0].status_code in (200, 409) and res[1].status_code in (201, 409)
    assert res[0].status_code == 200 or res[1].status_code == 201
    db.session.expire_all()
    from models import Mensaje
    mensajes = db.session.execute(select(Mensaje).where(Mensaje.ticket_id == t.id)).scalars().all()
    assert len(mensajes) == (res[1].status_code == 201)
    cierre = db.session.execute(select(Evento).where(Evento.ticket_id == t.id, Evento.despues == "cerrado")
                                ).scalar_one_or_none()
    assert (cierre is not None) == (res[0].status_code == 200)
    if cierre is not None:
        assert all(m.fecha <= cierre.fecha for m in mensajes)  # nothing written after the close


def test_concurrent_creations_nobody_can_take_alert_the_admins_once(app, api, make_user):
    from models import AlertaSLA, ConfiguracionSLA, Notificacion

    db.session.merge(ConfiguracionSLA(id=1, horario={str(d): ["00:00", "24:00"] for d in range(7)}, feriados=[],
                                      umbral_aviso_pct=80, minutos_critico_sin_asignar=15,
                                      asignacion_automatica=True))
    admin = make_user("admin")
    db.session.commit()
    clients = [api(make_user()) for _ in range(6)]  # no engineer at all: nobody can take any of them
    res = _race([lambda c=c: c.post("/api/tickets", json={
        "titulo": "Sin ingenieros", "descripcion": "x", "categoria": "General"}) for c in clients])
    assert [r.status_code for r in res] == [201] * 6
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(AlertaSLA).where(AlertaSLA.tipo == "sin_candidato")) == 1
    assert db.session.scalar(select(func.count()).select_from(Notificacion).where(
        Notificacion.usuario_id == admin.id, Notificacion.tipo == "sin_candidato")) == 1
    assert db.session.scalar(select(func.count()).select_from(Envio).where(Envio.tipo == "sla_sin_candidato")) == 1


def test_concurrent_creations_never_take_an_engineer_past_their_cap(app, api, make_user):
    """Eight creations at once, two engineers with two slots each: four get assigned, no one
    gets a third ticket (PostgreSQL locks only the chosen engineer and counts again)."""
    from models import ConfiguracionSLA

    db.session.merge(ConfiguracionSLA(id=1, horario={str(d): ["00:00", "24:00"] for d in range(7)}, feriados=[],
                                      umbral_aviso_pct=80, minutos_critico_sin_asignar=15,
                                      asignacion_automatica=True))
    ingenieros = [make_user("ingeniero").ingeniero for _ in range(2)]
    for i in ingenieros:
        i.max_abiertos = 2
    db.session.commit()
    clients = [api(make_user()) for _ in range(8)]
    res = _race([lambda c=c: c.post("/api/tickets", json={
        "titulo": "Tope", "descripcion": "x", "categoria": "General"}) for c in clients])
    assert [r.status_code for r in res] == [201] * 8
    db.session.expire_all()
    cargas = dict(db.session.execute(select(Ticket.ingeniero_id, func.count()).where(
        Ticket.ingeniero_id.is_not(None)).group_by(Ticket.ingeniero_id)).all())
    assert cargas == {i.id: 2 for i in ingenieros}
