"""Excel exports as background jobs (issue 13): start, progress, download, owner only, expiry,
reclaim of a job whose worker died, the CLI worker."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import pytest
from openpyxl import load_workbook

import exportaciones
import reports
import tickets
from models import Exportacion, db, utcnow

EXCEL = "/api/tickets/descargar/excel"
JOBS = "/api/tickets/descargar/excel/jobs"


@pytest.fixture(autouse=True)
def export_dir(app, tmp_path):
    app.config["EXPORT_DIR"] = str(tmp_path / "exportaciones")
    return tmp_path / "exportaciones"


@pytest.fixture
def data(roles, make_ticket):
    """Seven tickets: five of ``owner`` (two assigned to ``engineer``, one with a note), two of
    ``other_user``."""
    made = [make_ticket(roles["owner"], roles["engineer"] if i < 2 else None, "en_progreso" if i < 2 else "abierto",
                        titulo=f"Ticket {i} <&>", prioridad=("baja", "media", "alta", "critica")[i % 4],
                        etiquetas=["vpn"] if i == 1 else [])
            for i in range(5)]
    tickets.agregar_nota(made[0], roles["engineer"], "Revisado")
    made += [make_ticket(roles["other_user"], titulo=f"Otro {i}") for i in range(2)]
    db.session.commit()
    return made


def rows(content: bytes) -> list[tuple]:
    return list(load_workbook(io.BytesIO(content))["Tickets"].iter_rows(values_only=True))


def run_worker() -> bool:
    """One worker round, as `flask export-worker` runs it (its own session, like another process)."""
    db.session.remove()
    try:
        return exportaciones.ronda("test-worker")
    finally:
        db.session.remove()


def start(client, query: str = "tipo=todos", status: int = 202) -> dict:
    resp = client.post(f"{JOBS}?{query}")
    assert resp.status_code == status, resp.get_data(as_text=True)
    return resp.get_json()


def test_job_file_has_the_same_rows_as_the_immediate_export(roles, data, api):
    admin = api(roles["admin"])
    resp = admin.post(f"{JOBS}?tipo=todos&orden=numero_ticket&estado=abierto,en_progreso")
    assert resp.status_code == 202
    job = resp.get_json()
    assert resp.headers["Location"].endswith(f"{JOBS}/{job['id']}") and job["url"] == f"{JOBS}/{job['id']}"
    assert job["estado"] == "pendiente" and job["porcentaje"] == 0 and job["archivo_url"] is None
    assert job["filtros"] == {"estado": ["abierto", "en_progreso"], "orden": "numero_ticket"}
    assert admin.get(f"{JOBS}/{job['id']}/archivo").status_code == 409  # not written yet

    assert run_worker() is True
    job = admin.get(job["url"]).get_json()
    assert job["estado"] == "listo" and job["porcentaje"] == 100
    assert job["filas_escritas"] == job["filas_total"] == 7
    assert job["archivo_url"] == f"{JOBS}/{job['id']}/archivo" and job["expira_en"] > job["fecha_fin"]

    archivo = admin.get(job["archivo_url"])
    assert archivo.status_code == 200 and archivo.mimetype == reports.XLSX_MIMETYPE
    assert "tickets_todos_" in archivo.headers["Content-Disposition"]
    immediate = admin.get(f"{EXCEL}?tipo=todos&orden=numero_ticket&estado=abierto,en_progreso")
    assert rows(archivo.data) == rows(immediate.data)
    assert len(rows(archivo.data)) == 8  # header + 7, in the viewer's language, notes included
    assert run_worker() is False  # nothing left


def test_progress_moves_while_the_rows_are_written(app, roles, data, api, monkeypatch):
    """What the owner sees polling while the worker writes (chunks of 2 rows, progress every 2)."""
    monkeypatch.setattr(reports, "CHUNK", 2)
    app.config["EXPORT_PROGRESS_ROWS"] = 2
    owner = api(roles["owner"])
    job = start(owner, "tipo=mis")
    seen = []
    marcar = exportaciones._marcar

    def marcar_y_mirar(job_id, token, **valores):
        hecho = marcar(job_id, token, **valores)
        vista = owner.get(job["url"]).get_json()
        seen.append((vista["estado"], vista["filas_escritas"], vista["filas_total"], vista["porcentaje"]))
        return hecho

    monkeypatch.setattr(exportaciones, "_marcar", marcar_y_mirar)
    run_worker()
    assert seen[0] == ("en_curso", 0, 5, 0)  # claimed and counted: the bar can show 0 of 5
    en_curso = [s for s in seen if s[0] == "en_curso"]
    escritas = [s[1] for s in en_curso]
    assert escritas == sorted(escritas) and {2, 4} <= set(escritas)
    assert [s[3] for s in en_curso if s[1] == 2] == [40]
    assert seen[-1] == ("listo", 5, 5, 100)


@pytest.mark.parametrize("who, tipo", [("owner", "todos"), ("owner", "ingeniero"), ("engineer", "todos"),
                                       ("admin", "ingeniero")])
def test_job_obeys_the_role_rules_of_the_immediate_export(roles, data, api, who, tipo):
    client = api(roles[who])
    assert client.get(f"{EXCEL}?tipo={tipo}").status_code == 403
    resp = client.post(f"{JOBS}?tipo={tipo}")
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"
    assert db.session.query(Exportacion).count() == 0


def test_bad_query_is_a_422_and_anonymous_a_401(roles, api):
    assert api(roles["admin"]).post(f"{JOBS}?tipo=todos&estado=nada").status_code == 422
    assert api(roles["admin"]).post(JOBS).status_code == 422
    assert api(None).post(f"{JOBS}?tipo=mis").status_code == 401


def test_only_the_owner_sees_and_downloads_the_job(roles, data, api):
    job = start(api(roles["owner"]), "tipo=mis")
    run_worker()
    assert api(roles["owner"]).get(f"{JOBS}/{job['id']}/archivo").status_code == 200
    for other in ("other_user", "engineer", "admin"):
        client = api(roles[other])
        for path in (job["url"], f"{job['url']}/archivo"):
            resp = client.get(path)
            assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found", (other, path)
    assert api(roles["owner"]).get(f"{JOBS}/999999").status_code == 404


def test_panel_session_starts_a_job_with_the_csrf_header(roles, data, login):
    c, csrf = login(roles["owner"])
    assert c.post(f"{JOBS}?tipo=mis").status_code == 400  # a session write without its CSRF token
    resp = c.post(f"{JOBS}?tipo=mis", headers={"X-CSRFToken": csrf, "Accept": "application/json"})
    assert resp.status_code == 202


def test_expired_file_is_gone_and_deleted(app, roles, data, api):
    owner = api(roles["owner"])
    job = start(owner, "tipo=mis")
    run_worker()
    fila = db.session.get(Exportacion, job["id"])
    assert os.path.exists(fila.archivo)
    assert fila.expira_en - fila.fecha_fin == timedelta(hours=app.config["EXPORT_TTL_HOURS"])

    # Past expira_en the download is refused at once, even before the worker's sweep...
    fila.expira_en = utcnow() - timedelta(seconds=1)
    db.session.commit()
    resp = owner.get(f"{job['url']}/archivo")
    assert resp.status_code == 410 and resp.get_json()["error"]["code"] == "export_expired"
    assert owner.get(job["url"]).get_json()["archivo_url"] is None
    # ...and the sweep (every worker round) deletes the file.
    path = fila.archivo
    assert run_worker() is False
    assert not os.path.exists(path)
    vista = owner.get(job["url"]).get_json()
    assert vista["estado"] == "expirado" and vista["archivo_url"] is None
    assert owner.get(f"{job['url']}/archivo").status_code == 410


def test_a_job_whose_worker_died_is_reclaimed_and_finished(app, roles, data, api, export_dir):
    owner = api(roles["owner"])
    job = start(owner, "tipo=mis")
    muerto = exportaciones.reclamar("worker-that-dies")  # claimed, then the process is killed
    assert muerto.id == job["id"] and exportaciones.reclamar("another") is None  # claimed once
    token = muerto.reclamado_por
    parcial = exportaciones._parcial(exportaciones._ruta(muerto.id, token))
    parcial.parent.mkdir(parents=True, exist_ok=True)
    parcial.write_bytes(b"half a file")
    db.session.commit()

    assert run_worker() is False  # its heartbeat is recent: still someone's job
    assert owner.get(job["url"]).get_json()["estado"] == "en_curso"

    stale = utcnow() - timedelta(seconds=app.config["EXPORT_CLAIM_TIMEOUT_SECONDS"] + 1)
    db.session.execute(db.update(Exportacion).values(latido=stale))
    db.session.commit()
    assert run_worker() is True  # freed, claimed again, written
    vista = owner.get(job["url"]).get_json()
    assert vista["estado"] == "listo" and vista["filas_escritas"] == 5
    assert not parcial.exists()
    assert db.session.get(Exportacion, job["id"]).intentos == 2
    assert len(rows(owner.get(vista["archivo_url"]).data)) == 6
    # The old worker, had it only stalled, can no longer write on the job it lost.
    assert exportaciones._marcar(job["id"], token, filas_escritas=1) is False


def test_a_job_that_keeps_killing_its_worker_fails_visibly(app, roles, data, api):
    owner = api(roles["owner"])
    job = start(owner, "tipo=mis")
    stale = utcnow() - timedelta(seconds=app.config["EXPORT_CLAIM_TIMEOUT_SECONDS"] + 1)
    for _ in range(app.config["EXPORT_MAX_INTENTOS"]):
        assert exportaciones.reclamar("dies") is not None
        db.session.execute(db.update(Exportacion).values(latido=stale))
        db.session.commit()
        exportaciones.liberar_atascados()
    vista = owner.get(job["url"]).get_json()
    assert vista["estado"] == "fallido" and "stopped 3 times" in vista["error"]
    assert owner.get(f"{job['url']}/archivo").status_code == 409


def test_a_failing_export_is_recorded_on_the_job(roles, data, api, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reports, "exportar_excel", boom)
    owner = api(roles["owner"])
    job = start(owner, "tipo=mis")
    run_worker()
    vista = owner.get(job["url"]).get_json()
    assert vista["estado"] == "fallido" and vista["error"] == "RuntimeError: disk full"
    assert vista["archivo_url"] is None


def test_cli_worker_writes_the_queue(app, roles, data, api):
    owner = api(roles["owner"])
    jobs = [start(owner, "tipo=mis"), start(owner, "tipo=mis&estado=abierto")]
    db.session.remove()
    result = app.test_cli_runner().invoke(args=["export-worker"])
    assert result.exit_code == 0, result.output
    assert "exports written: 2" in result.output
    assert [owner.get(j["url"]).get_json()["filas_escritas"] for j in jobs] == [5, 3]


def test_the_list_panels_start_a_job_beyond_the_immediate_limit(app, roles, data, login):
    c, _ = login(roles["owner"])
    html = c.get("/tickets").get_data(as_text=True)
    assert 'href="/api/tickets/descargar/excel?tipo=mis"' in html and "data-exportacion" not in html
    app.config["EXPORT_SYNC_MAX_ROWS"] = 4  # the owner's list has 5
    html = c.get("/tickets").get_data(as_text=True)
    assert 'data-exportacion="/api/tickets/descargar/excel/jobs?tipo=mis"' in html
    assert "js/exportacion.js" in html and "excel?tipo=mis" not in html
    html = c.get("/tickets?estado=en_progreso").get_data(as_text=True)  # 2 rows: immediate again
    assert 'href="/api/tickets/descargar/excel?tipo=mis&amp;estado=en_progreso"' in html
