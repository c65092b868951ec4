# ruff: noqa: F811 - the graph fixture is imported, then requested by name
"""Configuración > WhatsApp (issue 9): secrets write-only and encrypted at rest, database over
.env, the bot's keyword rules edited by admins, the channel off without a token."""

from __future__ import annotations

from graph_fixture import graph  # noqa: F401 - fixture
from sqlalchemy import select, text
from test_whatsapp_webhook import firmar, payload, post, texto

import outbox
from models import CambioConfiguracion, ReglaBot, db


def test_settings_page_saves_secrets_encrypted_and_never_shows_them(client, graph, make_user, login, app):
    app.config.update(WHATSAPP_ACCESS_TOKEN="", WHATSAPP_APP_SECRET="")
    admin = make_user("admin")
    c, csrf = login(admin)
    pagina = c.get("/admin/configuracion/whatsapp").get_data(as_text=True)
    assert "WhatsApp está desactivado" in pagina
    r = c.post("/admin/configuracion/whatsapp", data={
        "csrf_token": csrf, "access_token": "EAAG-token-secreto", "app_secret": "secreto-nuevo",
        "phone_number_id": "106540352242922", "graph_base": graph.base, "horario": "",
        "palabras_escalado": "agente, humano", "fallos_para_escalar": "3"})
    assert r.status_code == 302
    pagina = c.get("/admin/configuracion/whatsapp").get_data(as_text=True)
    assert "WhatsApp está activado" in pagina and "EAAG-token-secreto" not in pagina and "secreto-nuevo" not in pagina
    crudo = db.session.execute(text("SELECT access_token, app_secret FROM configuracion_whatsapp")).one()
    assert all(v.startswith("fernet:") and "secreto" not in v for v in crudo)
    cambio = db.session.scalars(select(CambioConfiguracion).where(CambioConfiguracion.seccion == "whatsapp")).one()
    assert "access_token" in cambio.campos and "EAAG" not in str(cambio.detalle)
    # the stored secret signs the webhook and the token reaches the Graph API
    cuerpo = __import__("json").dumps(payload(texto("hola"))).encode()
    assert post(client, cuerpo, firma=firmar(cuerpo, "secreto-nuevo")).status_code == 200
    outbox.enviar_pendientes()
    assert graph.sent()[-1]["auth"] == "Bearer EAAG-token-secreto"
    # an empty secret field keeps the stored one; bad input is a 422 that changes nothing
    c.post("/admin/configuracion/whatsapp", data={"csrf_token": csrf, "access_token": "", "plantilla": "aviso"})
    assert "Bearer EAAG-token-secreto" == "Bearer " + __import__("whatsapp").ajustes().access_token
    r = c.post("/admin/configuracion/whatsapp", data={"csrf_token": csrf, "horario": "siempre", "plantilla": "otra"})
    assert r.status_code == 422
    assert __import__("whatsapp").ajustes().plantilla == "aviso"


def test_only_admins_reach_the_settings(client, graph, make_user, login):
    c, csrf = login(make_user("ingeniero"))
    assert c.get("/admin/configuracion/whatsapp").status_code == 403
    assert c.post("/admin/configuracion/whatsapp/reglas", data={"csrf_token": csrf}).status_code == 403


def test_admins_edit_the_bot_rules(client, graph, make_user, login):
    c, csrf = login(make_user("admin"))
    c.post("/admin/configuracion/whatsapp/reglas", data={"csrf_token": csrf, "palabras_clave": "precio, tarifa",
                                                         "respuesta": "Our prices: ...", "idioma": "en",
                                                         "orden": "1", "activa": "1"})
    regla = db.session.scalars(select(ReglaBot)).one()
    assert regla.palabras_clave == "precio, tarifa" and regla.activa and regla.idioma == "en"
    c.post("/admin/configuracion/whatsapp/reglas", data={"csrf_token": csrf, "palabras_clave": "", "respuesta": ""})
    assert db.session.scalar(select(__import__("sqlalchemy").func.count()).select_from(ReglaBot)) == 1
    post(client, payload(texto("hola")))
    post(client, payload(texto("¿Qué TARIFA tenéis?")))
    outbox.enviar_pendientes()
    assert graph.sent()[-1]["json"]["text"]["body"] == "Our prices: ..."
    c.post(f"/admin/configuracion/whatsapp/reglas/{regla.id}", data={
        "csrf_token": csrf, "palabras_clave": "precio", "respuesta": "x", "idioma": "es", "orden": "0"})
    db.session.expire_all()
    assert not regla.activa
    c.post(f"/admin/configuracion/whatsapp/reglas/{regla.id}", data={"csrf_token": csrf, "borrar": "1"})
    assert db.session.scalar(select(ReglaBot.id)) is None
