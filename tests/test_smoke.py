def test_usuario_creates_ticket_and_gets_numbered(api, make_user):
    u = make_user()
    r = api(u).post("/api/tickets", json={"titulo": "x", "descripcion": "y", "categoria": "Software", "prioridad": "alta"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["numero_ticket"] == "TKT-000001"
