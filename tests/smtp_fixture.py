"""A real SMTP server on loopback (aiosmtpd) for the email tests.

``smtp_server`` starts one on a free port, points the app's settings at it and records every
message it accepts: ``smtp_server.messages`` are parsed ``email.message.EmailMessage``
objects, ``smtp_server.envelopes`` the raw envelopes (sender and RCPT TO as the server saw
them). ``closed_port`` is a port nothing listens on ("SMTP down").
"""

from __future__ import annotations

import asyncio
import socket
import threading
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingHandler:
    def __init__(self):
        self.envelopes = []
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds per message: a slow server makes concurrency observable
        self.recibiendo = False

    async def handle_DATA(self, server, session, envelope):
        self.recibiendo = True  # a message's DATA arrived (tests wait for it mid-send)
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class SMTPServer:
    def __init__(self):
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self):
        self.controller.start()

    def stop(self):
        self.controller.stop()

    @property
    def envelopes(self):
        with self.handler.lock:
            return list(self.handler.envelopes)

    @property
    def messages(self):
        return [message_from_bytes(e.original_content or e.content, policy=policy.default) for e in self.envelopes]

    def to(self, address: str):
        """Messages whose envelope includes ``address``."""
        return [message_from_bytes(e.original_content or e.content, policy=policy.default)
                for e in self.envelopes if address.lower() in [r.lower() for r in e.rcpt_tos]]

    def clear(self):
        with self.handler.lock:
            self.handler.envelopes.clear()


@pytest.fixture
def smtp_server(app):
    server = SMTPServer()
    server.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_USE_TLS=False, MAIL_USE_SSL=False,
                      MAIL_USERNAME=None, MAIL_PASSWORD=None, MAIL_DEFAULT_SENDER="Mesa de Ayuda <soporte@mesa.test>",
                      MAIL_TIMEOUT=5)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_port():
    return free_port()


@pytest.fixture
def deliver(app):
    """Run one sender round as ``flask send-emails`` would, in the test's app context."""
    import outbox
    from models import db

    def run(**kwargs):
        db.session.expire_all()
        return outbox.enviar_pendientes(**kwargs)

    return run


def parts(message):
    """(text, html) bodies of a parsed message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return (text.get_content() if text is not None else None, html.get_content() if html is not None else None)
