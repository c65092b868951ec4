"""bench/reparto.py reads each process's CPU from /proc: the figures it prints rest on these."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench import reparto

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")


def test_the_cpu_of_a_process_grows_by_what_it_spent():
    antes = reparto.cpu([os.getpid()])
    fin = time.process_time() + 0.3
    while time.process_time() < fin:
        pass
    assert 0.2 <= reparto.cpu([os.getpid()]) - antes <= 5
    assert reparto.cpu([os.getpid(), 2 ** 22 + 12345]) >= antes  # a pid that is gone counts nothing


def test_children_and_names_find_a_spawned_process():
    hijo = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.1)
        assert hijo.pid in reparto.hijos(os.getpid())
        assert hijo.pid in reparto.llamados("sleep")
        assert hijo.pid not in reparto.llamados("postgres")
    finally:
        hijo.kill()
        hijo.wait()


def test_wrk_sends_the_asked_requests_and_counts_the_other_answers_apart():
    """``servidor.carga_wrk`` (reparto's ``--cliente wrk``): method, headers, JSON body and a random
    id per request reach the server; answers that are not 2xx are counted apart."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from bench import servidor

    vistos: list[tuple[str, str, str, dict]] = []

    class Registro(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            cuerpo = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            vistos.append((self.command, self.path, self.headers.get("Authorization"), cuerpo))
            estado = 201 if self.path != "/item/3" else 409
            self.send_response(estado)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Registro)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/item/%d"
        por_segundo, otras, cpu = servidor.carga_wrk(2, 1, url, "POST", {"Authorization": "Bearer x"},
                                                     {"titulo": "ñandú"}, ids=4)
    finally:
        httpd.shutdown()
    assert vistos and {v[0] for v in vistos} == {"POST"}
    assert {v[1] for v in vistos} <= {f"/item/{i}" for i in range(1, 5)} and len({v[1] for v in vistos}) == 4
    assert {v[2] for v in vistos} == {"Bearer x"} and {v[3]["titulo"] for v in vistos} == {"ñandú"}
    conflictos = sum(1 for v in vistos if v[1] == "/item/3")
    assert 0 < otras <= conflictos  # a request cut at the end was seen by the server, not counted by wrk
    assert 0 < por_segundo <= (len(vistos) - otras) / 0.9 and cpu >= 0
