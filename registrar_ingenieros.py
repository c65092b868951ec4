"""Create the admin and the three engineers (idempotent), optionally with demo data.

    python registrar_ingenieros.py                      # generated passwords, printed once
    python registrar_ingenieros.py --admin-password S --ingeniero-password S
    python registrar_ingenieros.py --demo [--if-empty]  # seed 001 demo logins + demo tickets

Accounts that already exist are left as they are (their passwords are never reset).
``--demo`` is refused when APP_ENV=production: demo passwords are public.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

INGENIEROS = [
    ("ing_carlos", "Carlos Méndez", "Redes y Servidores", "+34 600 000 001"),
    ("ing_maria", "María López", "Hardware y Impresoras", "+34 600 000 002"),
    ("ing_jorge", "Jorge Ramírez", "Software y Bases de Datos", "+34 600 000 003"),
]
DEMO_USUARIOS = [("usuario", "Ana Usuaria", "usuario123"), ("lucia", "Lucía Fernández", "lucia1234")]

# The demo tickets (Spanish, as the office would write them) are data: datos_demo.json.
DEMO_TICKETS = [(t["titulo"], t["descripcion"], t["categoria"], t["prioridad"])
                for t in json.loads((Path(__file__).with_name("datos_demo.json")).read_text(encoding="utf-8"))["tickets"]]


def _password(given: str | None) -> str:
    return given or secrets.token_urlsafe(12)


def ensure_account(username, nombre, rol, password, especialidad=None, telefono=None):
    """Create the account if missing. Returns the password when it was created, else None."""
    from models import Ingeniero, Usuario, db

    existing = db.session.execute(select(Usuario).where(Usuario.username == username)).scalar_one_or_none()
    if existing is not None:
        return None
    usuario = Usuario(username=username, nombre=nombre, email=f"{username}@mesadeayuda.local",
                      rol=rol, activo=True, idioma="es")
    usuario.set_password(password)
    db.session.add(usuario)
    if rol == "ingeniero":
        db.session.add(Ingeniero(usuario=usuario, especialidad=especialidad, telefono=telefono, disponible=True))
    db.session.flush()
    return password


def seed_demo_tickets() -> int:
    """Realistic tickets in every state, created through the domain rules (history included)."""
    from models import Ticket, db

    if db.session.execute(select(func.count(Ticket.id))).scalar_one():
        return 0
    # The demo follows its own plan (engineer by category, a few left in the unassigned queue):
    # automatic assignment is paused while it is written, and left as it was.
    import sla

    ajustes = sla.ajustes()
    automatica, ajustes.asignacion_automatica = ajustes.asignacion_automatica, False
    try:
        return _escribir_demo()
    finally:
        ajustes.asignacion_automatica = automatica
        db.session.flush()


def _escribir_demo() -> int:
    import tickets
    from models import Ingeniero, Usuario, db
    from schemas import TicketCreate

    rng = random.Random(2026)
    admin = db.session.execute(select(Usuario).where(Usuario.rol == "admin")).scalars().first()
    requesters = db.session.execute(select(Usuario).where(Usuario.rol == "usuario")).scalars().all()
    engineers = {i.especialidad: i for i in db.session.execute(select(Ingeniero)).scalars()}
    by_category = {"Redes": "Redes y Servidores", "Hardware": "Hardware y Impresoras",
                   "Software": "Software y Bases de Datos", "Accesos y Cuentas": "Software y Bases de Datos",
                   "Facturación": "Software y Bases de Datos"}
    paths = [[], ["en_progreso"], ["en_progreso", "en_espera"], ["en_progreso", "resuelto"],
             ["en_progreso", "resuelto", "cerrado"]]
    count = 0
    for n, (titulo, descripcion, categoria, prioridad) in enumerate(DEMO_TICKETS):
        requester = requesters[n % len(requesters)]
        ticket = tickets.crear_ticket(TicketCreate(titulo=titulo, descripcion=descripcion, categoria=categoria,
                                                   prioridad=prioridad, etiquetas=["demo"]), usuario=requester)
        path = paths[n % len(paths)]
        if n % 6 != 5:  # a few stay in the unassigned queue
            ingeniero = engineers.get(by_category.get(categoria, ""))
            if ingeniero is not None:
                tickets.asignar(ticket, admin, ingeniero.id)
                for estado in path:
                    if estado == "en_progreso":
                        tickets.agregar_mensaje(ticket, ingeniero.usuario, "Hola, ya estoy revisando tu caso.")
                        tickets.agregar_nota(ticket, ingeniero.usuario, "Revisar registros del equipo antes de llamar.")
                    tickets.cambiar_estado(ticket, ingeniero.usuario, estado)
        # Open work is recent, finished work older: a believable office, not a backlog of overdue tickets.
        if ticket.estado in ("resuelto", "cerrado"):
            age = timedelta(days=rng.randint(3, 25), hours=rng.randint(0, 20))
        else:
            age = timedelta(hours=rng.randint(1, 30))
        _backdate(ticket, age, step=age / 3 / max(len(ticket.eventos), 1))
        count += 1
    db.session.flush()
    return count


def _backdate(ticket, age: timedelta, step: timedelta) -> None:
    """Move a freshly seeded ticket ``age`` into the past, its history steps ``step`` apart,
    keeping thread, notes and the ticket's own dates consistent with the history."""
    start = ticket.fecha_creacion - age
    originals = [e.fecha for e in ticket.eventos]
    for i, evento in enumerate(ticket.eventos):
        evento.fecha = start + step * i

    def moved(instant):
        """Where ``instant`` lands: at the first history step recorded at or after it."""
        for i, original in enumerate(originals):
            if original >= instant:
                return start + step * i
        return start + step * max(len(originals) - 1, 0)

    for item in list(ticket.mensajes) + list(ticket.notas):
        item.fecha = moved(item.fecha)
        if getattr(item, "fecha_lectura", None):
            item.fecha_lectura = item.fecha + step / 2
    for campo in ("fecha_primera_respuesta", "fecha_resolucion", "fecha_cierre"):
        if getattr(ticket, campo) is not None:
            setattr(ticket, campo, moved(getattr(ticket, campo)))
    ticket.fecha_creacion = start
    ticket.fecha_actualizacion = start + step * max(len(originals) - 1, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-password")
    parser.add_argument("--ingeniero-password", help="one password for the three engineers")
    parser.add_argument("--demo", action="store_true", help="demo logins of seed 001 and demo tickets")
    parser.add_argument("--if-empty", action="store_true", help="do nothing when any account exists")
    args = parser.parse_args(argv)

    from app import create_app
    from models import Usuario, db

    app = create_app()
    if args.demo and app.config["APP_ENV"] == "production":
        print("Refusing --demo: APP_ENV=production (demo passwords are public).", file=sys.stderr)
        return 2
    with app.app_context():
        if args.if_empty and db.session.execute(select(func.count(Usuario.id))).scalar_one():
            print("Database already has accounts; nothing seeded.")
            return 0
        created = []
        has_admin = db.session.execute(select(Usuario.id).where(Usuario.rol == "admin")).first()
        if not has_admin:
            pw = "admin123" if args.demo else _password(args.admin_password)
            if ensure_account("admin", "Administrador", "admin", pw):
                created.append(("admin", "admin", pw))
        for username, nombre, especialidad, telefono in INGENIEROS:
            pw = f"{username}123" if args.demo else _password(args.ingeniero_password)
            if ensure_account(username, nombre, "ingeniero", pw, especialidad, telefono):
                created.append((username, f"ingeniero · {especialidad}", pw))
        demo_count = 0
        if args.demo:
            for username, nombre, pw in DEMO_USUARIOS:
                if ensure_account(username, nombre, "usuario", pw):
                    created.append((username, "usuario", pw))
            import email_manager

            with email_manager.sin_correos():  # demo addresses are not real mailboxes
                demo_count = seed_demo_tickets()
        db.session.commit()

    if created:
        print("Accounts created (passwords are shown only now):")
        for username, role, pw in created:
            print(f"  {username:<12} {role:<40} {pw}")
    else:
        print("All accounts already existed; nothing changed.")
    if demo_count:
        print(f"Demo tickets created: {demo_count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
