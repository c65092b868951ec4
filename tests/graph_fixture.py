"""A local HTTP server standing in for Meta's Graph API: records what is sent, answers with a
wamid, serves media, and can be told to fail (``fail_with = (status, json)``)."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class GraphFake:
    def __init__(self):
        self.requests: list[dict] = []
        self.fail_with: tuple[int, dict] | None = None
        self.media: dict[str, tuple[bytes, str]] = {}
        self.media_fail = False
        self.uploads: list[dict] = []
        self._seq = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body: bytes, ctype="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.endswith("/media"):
                    fake.uploads.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                         "content_type": self.headers.get("Content-Type"), "body": raw})
                    return self._send(200, json.dumps({"id": f"UP{len(fake.uploads)}"}).encode())
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                      "json": json.loads(raw or b"{}")})
                if fake.fail_with is not None:
                    status, body = fake.fail_with
                    return self._send(status, json.dumps(body).encode())
                wamid = f"wamid.OUT{next(fake._seq)}"
                to = fake.requests[-1]["json"].get("to")
                self._send(200, json.dumps({"messaging_product": "whatsapp",
                                            "contacts": [{"input": to, "wa_id": to}],
                                            "messages": [{"id": wamid}]}).encode())

            def do_GET(self):
                fake.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "json": None})
                if fake.media_fail:
                    return self._send(500, b'{"error":{"code":1,"message":"down"}}')
                if self.path.startswith("/files/"):
                    media_id = self.path.rsplit("/", 1)[1]
                    data, mime = fake.media[media_id]
                    return self._send(200, data, mime)
                media_id = self.path.rsplit("/", 1)[1]
                if media_id not in fake.media:
                    return self._send(404, b'{"error":{"code":100,"message":"no media"}}')
                data, mime = fake.media[media_id]
                self._send(200, json.dumps({"url": f"{fake.root}/files/{media_id}", "mime_type": mime,
                                            "id": media_id}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.root = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.base = self.root + "/v21.0"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def sent(self) -> list[dict]:
        return [r for r in self.requests if r["json"] is not None]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def graph(app):
    """The fake Graph API, with the app's WhatsApp settings pointing at it."""
    fake = GraphFake()
    app.config.update(WHATSAPP_VERIFY_TOKEN="verifica-123", WHATSAPP_APP_SECRET="secreto-app",
                      WHATSAPP_ACCESS_TOKEN="token-graph", WHATSAPP_PHONE_NUMBER_ID="106540352242922",
                      WHATSAPP_GRAPH_BASE=fake.base, WHATSAPP_TEMPLATE="", WHATSAPP_OFFICE_HOURS="",
                      WHATSAPP_TIMEOUT=5)
    import outbox
    import whatsapp

    outbox.registrar_canal("whatsapp", whatsapp.AdaptadorGraph)
    yield fake
    fake.close()
