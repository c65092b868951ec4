"""The JSON every response carries (app.SafeJSONProvider): the same document the json module
would write, keys sorted, text beyond ASCII as UTF-8, and what orjson cannot write still written."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from flask import jsonify


def test_a_ticket_list_is_the_document_with_sorted_keys_and_utf8_text(api, make_user, make_ticket):
    dueno = make_user("usuario")
    make_ticket(dueno, titulo="Impresión atascada 🖨️", descripcion="línea uno")
    r = api(dueno).get("/api/mis-tickets")
    assert r.status_code == 200 and r.mimetype == "application/json"
    cuerpo = r.get_data()
    assert "Impresión atascada 🖨️".encode() in cuerpo  # as UTF-8, not \u escapes
    item = json.loads(cuerpo)["items"][0]
    assert item["titulo"] == "Impresión atascada 🖨️"
    assert list(item) == sorted(item)  # the order json.dumps(sort_keys=True) gave clients
    assert cuerpo.endswith(b"}\n") and b", " not in cuerpo.replace(b"atascada ", b"")


def test_values_orjson_does_not_write_itself_keep_flasks_forms(app):
    valores = {"fecha": date(2026, 11, 30), "instante": datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
               "importe": Decimal("10.50")}
    with app.test_request_context():
        assert json.loads(jsonify(valores).get_data()) == {
            "fecha": "Mon, 30 Nov 2026 00:00:00 GMT", "instante": "Mon, 30 Nov 2026 12:00:00 GMT", "importe": "10.50"}
        assert jsonify({3: "clave entera"}).get_data() == b'{"3":"clave entera"}\n'
        grande = 2**70  # beyond orjson's 64 bits: the json module writes it
        assert json.loads(jsonify({"grande": grande}).get_data()) == {"grande": grande}
        assert json.loads(app.json.dumps({"b": 1, "a": [1, 2]})) == {"a": [1, 2], "b": 1}
        assert app.json.dumps({"b": 1, "a": 2}) == '{"a":2,"b":1}'
