"""A real IMAP server (Debian's dovecot-imapd) on loopback for the email-in tests.

Started once per session with a throwaway configuration in a temp dir: one static user
(``mesa`` / ``secreto``), Maildir storage in the temp dir, plain-text login allowed on
127.0.0.1, no SSL. Messages are put into the mailbox with IMAP APPEND, as an MTA would deliver."""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USUARIO, CLAVE = "mesa", "secreto"


def _puerto_libre() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _usuario_sistema(nombre: str, defecto: str) -> str:
    """Dovecot's own unprivileged users (created by the Debian package); login must not be root."""
    try:
        pwd.getpwnam(nombre)
        return nombre
    except KeyError:
        return defecto if defecto != "root" else "nobody"


class Dovecot:
    def __init__(self, base: Path):
        self.base = base
        self.port = _puerto_libre()
        self.conf = base / "dovecot.conf"
        cuenta = pwd.getpwnam(_usuario_sistema("dovecot", "nobody"))
        self.uid, self.gid = cuenta.pw_uid, cuenta.pw_gid

    def start(self) -> None:
        yo = pwd.getpwuid(os.getuid()).pw_name
        (self.base / "run").mkdir()
        (self.base / "mail").mkdir()
        os.chmod(self.base, 0o755)  # the mail process runs unprivileged (uid 0 is refused as a mail user)
        os.chown(self.base / "mail", self.uid, self.gid)
        self.conf.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {self.base}/run
state_dir = {self.base}/run
log_path = {self.base}/dovecot.log
info_log_path = {self.base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {_usuario_sistema("dovecot", yo)}
default_login_user = {_usuario_sistema("dovenull", yo)}
mail_location = maildir:{self.base}/mail/%u
first_valid_uid = 1
passdb {{
  driver = static
  args = password={CLAVE}
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.base}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
""")
        subprocess.run([DOVECOT, "-c", str(self.conf)], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not start: " + (self.base / "dovecot.log").read_text(errors="replace"))

    def stop(self) -> None:
        subprocess.run([DOVECOT, "-c", str(self.conf), "stop"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)

    def conectar(self) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        c.login(USUARIO, CLAVE)
        return c

    def entregar(self, raw: bytes, carpeta: str = "INBOX") -> None:
        c = self.conectar()
        try:
            c.append(carpeta, None, None, raw)
        finally:
            c.logout()

    def vistos(self, carpeta: str = "INBOX") -> int:
        c = self.conectar()
        try:
            c.select(carpeta)
            _, datos = c.search(None, "SEEN")
            return len((datos[0] or b"").split())
        finally:
            c.logout()


@pytest.fixture(scope="session")
def dovecot():
    if not os.path.exists(DOVECOT):
        pytest.fail("dovecot is not installed: run `make system-deps` (Debian package dovecot-imapd)")
    base = Path(tempfile.mkdtemp(prefix="mesa-dovecot-"))  # not under pytest's 0700 tree: dovecot drops root
    server = Dovecot(base)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def imap(app, dovecot):
    """The app's IMAP_* settings pointed at the test mailbox, emptied first."""
    c = dovecot.conectar()
    c.select("INBOX")
    _, datos = c.search(None, "ALL")
    for n in (datos[0] or b"").split():
        c.store(n, "+FLAGS", "\\Deleted")
    c.expunge()
    c.logout()
    app.config.update(IMAP_HOST="127.0.0.1", IMAP_PORT=dovecot.port, IMAP_SSL=False, IMAP_USER=USUARIO,
                      IMAP_PASSWORD=CLAVE, IMAP_FOLDER="INBOX")
    return dovecot
