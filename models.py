"""Database models of Mesa de Ayuda (SQLAlchemy 2.0 typed, portable SQLite/PostgreSQL).

Dates are stored as naive UTC and handed back as aware UTC datetimes (``UTCDateTime``),
so SQLite and PostgreSQL behave the same and the API always speaks ISO 8601 UTC.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from functools import cache
from typing import Optional

import phonenumbers
from flask import current_app, has_app_context
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    case,
    event,
    inspect,
    or_,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    foreign,
    make_transient_to_detached,
    mapped_column,
    relationship,
    validates,
)
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.sql.elements import Grouping
from werkzeug.security import check_password_hash, generate_password_hash

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("usuario", "ingeniero", "admin")
IDIOMAS = ("es", "en")


def idioma_de(valor: Optional[str]) -> str:
    """A person's language when the app has it, else Spanish (the UI's, an email's, a PDF's)."""
    return valor if valor in IDIOMAS else "es"


PRIORIDADES = ("baja", "media", "alta", "critica")
ESTADOS = ("abierto", "en_progreso", "en_espera", "resuelto", "cerrado")
CANALES = ("web", "api", "whatsapp", "email")
ESTADOS_ABIERTOS = ("abierto", "en_progreso", "en_espera")
PRIORIDAD_RANK = {"baja": 1, "media": 2, "alta": 3, "critica": 4}
# The rank of a prioridad as SQL with literals (not bound parameters), which the index
# ix_tickets_prioridad_rango holds: tickets.rango_prioridad() writes the same expression, so that
# SQLite and PostgreSQL recognise it in ``ORDER BY`` (orden=prioridad) and walk the index.
RANGO_PRIORIDAD_SQL = "(CASE " + " ".join(f"WHEN prioridad = '{p}' THEN {n}" for p, n in PRIORIDAD_RANK.items()) + " END)"


def normalizar_telefono(raw: str, region: str | None = None) -> str:
    """E.164 (``+34600111222``) so one client is one phone, however it was typed.

    Numbers without a country code are read in DEFAULT_PHONE_REGION. Raises ValueError
    for something that is not a possible phone number.
    """
    if region is None:
        region = current_app.config.get("DEFAULT_PHONE_REGION", "ES") if has_app_context() else "ES"
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"Not a phone number: {raw!r}") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"Not a phone number: {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Naive UTC in the database, aware UTC in Python."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class EncryptedText(TypeDecorator):
    """Text encrypted at rest with Fernet (AES-128-CBC + HMAC), key derived from SECRET_KEY.

    Values read back that cannot be decrypted (SECRET_KEY changed) come back as None, so the
    admin is asked to enter the secret again instead of the app failing."""

    impl = String
    cache_ok = True
    PREFIX = "fernet:"

    @staticmethod
    def _fernet():
        from cryptography.fernet import Fernet

        secret = current_app.config["SECRET_KEY"].encode()
        key = hashlib.sha256(b"mesa-de-ayuda/encrypted-text/" + secret).digest()
        return Fernet(base64.urlsafe_b64encode(key))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return self.PREFIX + self._fernet().encrypt(value.encode()).decode()

    def process_result_value(self, value, dialect):
        if value is None or not value.startswith(self.PREFIX):
            return value
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet().decrypt(value[len(self.PREFIX):].encode()).decode()
        except InvalidToken:
            current_app.logger.warning("An encrypted setting cannot be read with this SECRET_KEY; enter it again.")
            return None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def leer(stmt, params: Optional[dict] = None):
    """The rows of a SELECT of columns (no ORM entities) run on the session's connection, after
    the session's autoflush, as ``db.session.execute`` would: without the ORM's execution
    machinery (its events and result adaptation), which cost a ticket list more CPU than SQLite
    took to run the list's statements (issue 13). Not for the statistics rollup's tables, whose
    reads go through the session (``acumulados`` writes their pending share first)."""
    session = db.session()
    if session.autoflush:
        session.flush()  # nothing to do, and no SQL, when nothing is pending
    return session.connection().execute(stmt, params)


def enlazar(obj, relacion: str, destino) -> None:
    """Many-to-one ``relacion`` of ``obj`` set to ``destino`` as a query would have loaded it: its
    key columns written directly and the relationship loaded, so the flush has no relationship to
    synchronise. A creation's rows (the ticket, its history, its emails) cost ~20 % less to flush
    so (issue 13). No backref event fires: a collection of ``destino`` already in memory does not
    get ``obj``. A ``destino`` whose primary key is not known yet goes through the relationship."""
    if destino is not None:
        destino = instance_state(destino).obj()  # the row itself, through a proxy too (current_user)
        if None in inspect(type(destino)).primary_key_from_instance(destino):
            setattr(obj, relacion, destino)
            return
    for local, remota in _claves_de(type(obj), relacion):
        setattr(obj, local, None if destino is None else getattr(destino, remota))
    set_committed_value(obj, relacion, destino)


@cache
def _claves_de(clase, relacion: str) -> tuple[tuple[str, str], ...]:
    """``relacion``'s (local attribute, the target's attribute) pairs: its foreign key's columns."""
    prop = inspect(clase).relationships[relacion]
    return tuple((prop.parent.get_property_by_column(local).key, prop.mapper.get_property_by_column(remota).key)
                 for local, remota in prop.local_remote_pairs)


def persistente(modelo, atributos, valores):
    """The ``modelo`` row ``valores`` (one per column attribute, in ``atributos``'s order) as the
    session's persistent object, as a query would have loaded it: the session's own object when it
    holds that row already, else a new one with those values loaded and no history, its
    relationships unloaded (lazy, as after a query)."""
    session = db.session()
    mapper = inspect(modelo)
    clave = tuple(valores[atributos.index(mapper.get_property_by_column(c))] for c in mapper.primary_key)
    existente = session.identity_map.get(mapper.identity_key_from_primary_key(clave))
    if existente is not None:
        return existente
    obj = modelo()
    for atributo, valor in zip(atributos, valores, strict=True):
        set_committed_value(obj, atributo.key, valor)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj

# The full-text index of the tickets (migration 0014, busqueda.py) is derived data that the
# migration owns: an FTS5 virtual table and its shadow tables on SQLite, a tsvector table on
# PostgreSQL, both kept by triggers. It has no model; autogenerate leaves it alone.
TABLA_BUSQUEDA = "busqueda_tickets"
# The settings' generation (migration 0026, generacion.py): one number the database's triggers
# draw anew; no model either.
TABLA_GENERACION = "generacion_ajustes"


# Indexes on an expression: SQLite cannot reflect them and PostgreSQL gives the expression back in
# its own words, so autogenerate cannot compare them (tests/test_migrations.py checks they exist).
# The duration indexes (migration 0020: the wall-clock durations whose median the statistics
# probe) are on an expression of the backend's own dialect.
INDICES_DURACION = ("ix_tickets_duracion_primera_respuesta", "ix_tickets_duracion_resolucion")
# ix_usuarios_busqueda: the requester's names for the search on PostgreSQL (migration 0025, busqueda.py).
INDICES_DE_EXPRESION = ("ix_tickets_estado_vence", "ix_tickets_prioridad_rango", "ix_usuarios_busqueda",
                        *INDICES_DURACION)


def incluir_en_migraciones(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object: everything but the search index (see TABLA_BUSQUEDA), the
    settings' generation (TABLA_GENERACION) and the
    indexes on an expression (INDICES_DE_EXPRESION): SQLite cannot reflect them and PostgreSQL
    reflects them rewritten (casts, parentheses), so autogenerate can never match the model's text."""
    if type_ == "index" and name in INDICES_DE_EXPRESION:
        return False
    tabla = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", "")
    return not (tabla in (TABLA_BUSQUEDA, TABLA_GENERACION) or str(tabla).startswith(TABLA_BUSQUEDA + "_"))


ticket_etiquetas = Table(
    "ticket_etiquetas",
    Base.metadata,
    Column("ticket_id", ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
    Column("etiqueta_id", ForeignKey("etiquetas.id", ondelete="CASCADE"), primary_key=True),
    # The ticket's own fecha_creacion, copied: a tag's list in the default order is then one range
    # of the index below, where walking the tickets' date order probed 20,000 of them for page 50
    # of a tag at a million (issue 13). Written by the ORM with the link (Ticket.etiquetas's join
    # names it) and followed when the ticket's date changes (_fecha_a_sus_etiquetas).
    Column("fecha_creacion", UTCDateTime, nullable=False),
    # A tag's tickets newest first from the index alone (tickets._con_etiqueta, _enlaces, its count).
    Index("ix_ticket_etiquetas_etiqueta_fecha", "etiqueta_id", "fecha_creacion", "ticket_id"),
)


class Usuario(UserMixin, db.Model):
    __tablename__ = "usuarios"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    nombre: Mapped[str] = mapped_column(String(120), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    rol: Mapped[str] = mapped_column(String(20), default="usuario", index=True)
    activo: Mapped[bool] = mapped_column(Boolean, default=True)
    idioma: Mapped[str] = mapped_column(String(5), default="es")
    fecha_creacion: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Issue 14: bumped on logout, password change and deactivation; a session cookie carries
    # the version it was issued with and stops working once they differ (auth.load_user).
    sesion_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    ingeniero: Mapped[Optional["Ingeniero"]] = relationship(back_populates="usuario", uselist=False)

    def set_password(self, password: str) -> None:
        # Tests lower the work factor through PASSWORD_HASH_METHOD; production keeps scrypt.
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt") if has_app_context() else "scrypt"
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login: deactivated accounts cannot log in
        return self.activo

    @property
    def es_staff(self) -> bool:
        return self.rol in ("ingeniero", "admin")

    def __repr__(self) -> str:
        return f"<Usuario {self.username} ({self.rol})>"


class Ingeniero(db.Model):
    __tablename__ = "ingenieros"

    id: Mapped[int] = mapped_column(primary_key=True)
    usuario_id: Mapped[int] = mapped_column(ForeignKey("usuarios.id"), unique=True)
    especialidad: Mapped[str] = mapped_column(String(100), default="General")
    telefono: Mapped[Optional[str]] = mapped_column(String(20))
    disponible: Mapped[bool] = mapped_column(Boolean, default=True)
    # Automatic assignment (issue 12, asignacion.py): open-ticket cap and the round-robin tie-break.
    max_abiertos: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    ultima_asignacion: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    fecha_creacion: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    usuario: Mapped[Usuario] = relationship(back_populates="ingeniero")

    @property
    def nombre(self) -> str:
        return self.usuario.nombre


class ApiToken(db.Model):
    """A Bearer token for API clients. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    usuario_id: Mapped[int] = mapped_column(ForeignKey("usuarios.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nombre: Mapped[str] = mapped_column(String(100), default="api")
    fecha_creacion: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ultimo_uso: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revocado: Mapped[bool] = mapped_column(Boolean, default=False)
    # Issue 14: tokens expire (API_TOKEN_DAYS); NULL only for rows older than migration 0010.
    expira_en: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    usuario: Mapped[Usuario] = relationship()

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class Categoria(db.Model):
    __tablename__ = "categorias"

    id: Mapped[int] = mapped_column(primary_key=True)
    nombre: Mapped[str] = mapped_column(String(80), unique=True)
    descripcion: Mapped[Optional[str]] = mapped_column(String(255))
    activa: Mapped[bool] = mapped_column(Boolean, default=True)
    # The engineers' especialidad that handles it (automatic assignment prefers them).
    especialidad: Mapped[Optional[str]] = mapped_column(String(100))


class Etiqueta(db.Model):
    __tablename__ = "etiquetas"

    id: Mapped[int] = mapped_column(primary_key=True)
    nombre: Mapped[str] = mapped_column(String(50), unique=True)


class Cliente(db.Model):
    """A CRM contact without a login (writes over WhatsApp or email)."""

    __tablename__ = "clientes"

    id: Mapped[int] = mapped_column(primary_key=True)
    nombre: Mapped[str] = mapped_column(String(120), index=True)
    email: Mapped[Optional[str]] = mapped_column(String(254), index=True)
    telefono: Mapped[Optional[str]] = mapped_column(String(20), unique=True)  # E.164
    empresa: Mapped[Optional[str]] = mapped_column(String(120))
    fecha_creacion: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @validates("telefono")
    def _normalize_telefono(self, key, value):
        return normalizar_telefono(value) if value else None


# Partial indexes of the stored SLA outcome (name suffix: columns), see Ticket.__table_args__.
INDICES_SLA = {
    f"{prefijo}_{clave}": (*grupo, f"sla_{metrica}_segundos")
    for metrica, prefijo in (("primera_respuesta", "sla1"), ("resolucion", "sla2"))
    for clave, grupo in (("total", ()), ("ingeniero", ("ingeniero_id",)), ("prioridad", ("prioridad",)),
                         ("categoria", ("categoria_id",)), ("fecha", ("fecha_creacion",)))
}


class Ticket(db.Model):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_ingeniero_estado", "ingeniero_id", "estado"),
        Index("ix_tickets_usuario_fecha", "usuario_id", "fecha_creacion"),
        Index("ix_tickets_estado_fecha", "estado", "fecha_creacion"),
        # estado + prioridad is the panels' most common pair: covers its COUNT and its page.
        Index("ix_tickets_estado_prioridad_fecha_id", "estado", "prioridad", "fecha_creacion", "id"),
        Index("ix_tickets_categoria_fecha", "categoria_id", "fecha_creacion"),
        # The default order with its tie-break (PostgreSQL needs the id in the index, SQLite has it
        # as the rowid): a page deep in a list, or of a tag's tickets, finds its ids walking this
        # index alone and reads only its own rows (paneles.paginar_por_clave).
        Index("ix_tickets_fecha_id", "fecha_creacion", "id"),
        # orden=prioridad: the rank then the id (the list's tie-break; PostgreSQL needs it in the
        # index, SQLite has it as the rowid), so that a list sorted by priority reads its page
        # from the index instead of sorting every match (167,000 rows of a 1M category).
        Index("ix_tickets_prioridad_rango", text(RANGO_PRIORIDAD_SQL), "id"),
        # The live stream's "what changed in my scope" (notificaciones.Vigia): max(fecha_actualizacion)
        # and the recent changes of one engineer's or one requester's tickets, O(log n) per poll.
        Index("ix_tickets_ingeniero_actualizacion", "ingeniero_id", "fecha_actualizacion"),
        Index("ix_tickets_usuario_actualizacion", "usuario_id", "fecha_actualizacion"),
        # SLA percentiles (sla._agregados): the k-th outcome of a group is an ORDER BY/OFFSET probe
        # walking one of these. Partial: a ticket enters them when answered or resolved, so a
        # creation (NULL outcome) writes none of them.
        *(Index(f"ix_tickets_{nombre}", *columnas, sqlite_where=text(f"{columnas[-1]} IS NOT NULL"),
                postgresql_where=text(f"{columnas[-1]} IS NOT NULL"))
          for nombre, columnas in INDICES_SLA.items()),
        # The statistics' daily series of closed tickets (fecha_cierre >= 30 days ago); partial, so
        # only a closing writes it.
        Index("ix_tickets_fecha_cierre", "fecha_cierre", sqlite_where=text("fecha_cierre IS NOT NULL"),
              postgresql_where=text("fecha_cierre IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Derived from the primary key inside the ticket's own INSERT (tickets.asignar_numero), so
    # it is unique by construction; nullable for rows written otherwise (bulk seeds).
    numero_ticket: Mapped[Optional[str]] = mapped_column(String(20), unique=True)
    titulo: Mapped[str] = mapped_column(String(255), index=True)
    descripcion: Mapped[str] = mapped_column(Text)
    prioridad: Mapped[str] = mapped_column(String(10), default="media", index=True)
    estado: Mapped[str] = mapped_column(String(15), default="abierto", index=True)
    canal: Mapped[str] = mapped_column(String(10), default="web", index=True)
    categoria_id: Mapped[int] = mapped_column(ForeignKey("categorias.id"), index=True)
    usuario_id: Mapped[Optional[int]] = mapped_column(ForeignKey("usuarios.id"), index=True)
    cliente_id: Mapped[Optional[int]] = mapped_column(ForeignKey("clientes.id"), index=True)
    ingeniero_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ingenieros.id"), index=True)
    # Seed 000's links: the WhatsApp conversation it escalated from, the email it came from.
    conversacion_whatsapp_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("conversaciones.id", ondelete="SET NULL", use_alter=True), index=True)
    comunicacion_email_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("comunicaciones.id", ondelete="SET NULL", use_alter=True), index=True)
    fecha_creacion: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fecha_actualizacion: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    fecha_primera_respuesta: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    fecha_resolucion: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    fecha_cierre: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # Issue 14: optimistic concurrency. Every UPDATE of a ticket is
    # ``... SET version = version + 1 WHERE id = ? AND version = ?`` (SQLAlchemy's version_id_col);
    # a writer that read an older row matches nothing and gets StaleDataError -> 409
    # (tickets.guardar). Same design on SQLite and PostgreSQL.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


    # SLA (issue 12, sla.py): due and warning times in UTC, recomputed on every change that moves
    # them; indexed so the overdue counter and ``sla-tick`` are range scans, not Python loops.
    sla_primera_respuesta_vence: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    sla_primera_respuesta_aviso: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    sla_resolucion_vence: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    sla_resolucion_aviso: Mapped[Optional[datetime]] = mapped_column(UTCDateTime, index=True)
    sla_pausado_segundos: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # business s
    sla_pausa_desde: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)  # clock stopped since
    # The SLA outcome, stored when it happens (sla.registrar_resultado) so the metrics are SQL
    # aggregates: business seconds to the first response (from creation) and to resolution (clock
    # time, pauses excluded) and whether each due time was met. NULL until reached (or without a
    # due time); the resolution pair is cleared on reopen.
    sla_primera_respuesta_segundos: Mapped[Optional[int]] = mapped_column(Integer)
    sla_primera_respuesta_cumplida: Mapped[Optional[bool]] = mapped_column(Boolean)
    sla_resolucion_segundos: Mapped[Optional[int]] = mapped_column(Integer)
    sla_resolucion_cumplida: Mapped[Optional[bool]] = mapped_column(Boolean)

    categoria: Mapped[Categoria] = relationship()
    usuario: Mapped[Optional[Usuario]] = relationship(foreign_keys=[usuario_id])
    cliente: Mapped[Optional[Cliente]] = relationship()
    ingeniero: Mapped[Optional[Ingeniero]] = relationship()
    # The join names the link's copy of fecha_creacion so that the ORM writes it with each link.
    etiquetas: Mapped[list[Etiqueta]] = relationship(
        secondary=ticket_etiquetas, order_by="Etiqueta.nombre",
        primaryjoin=lambda: and_(Ticket.id == foreign(ticket_etiquetas.c.ticket_id),
                                 Ticket.fecha_creacion == foreign(ticket_etiquetas.c.fecha_creacion)),
        secondaryjoin=lambda: Etiqueta.id == foreign(ticket_etiquetas.c.etiqueta_id),
    )
    mensajes: Mapped[list["Mensaje"]] = relationship(
        back_populates="ticket", order_by="Mensaje.id", cascade="all, delete-orphan"
    )
    notas: Mapped[list["NotaInterna"]] = relationship(
        back_populates="ticket", order_by="NotaInterna.id", cascade="all, delete-orphan"
    )
    eventos: Mapped[list["Evento"]] = relationship(
        back_populates="ticket", order_by="Evento.id", cascade="all, delete-orphan"
    )

    @property
    def ingeniero_usuario_id(self) -> Optional[int]:
        """The assigned engineer's account (None: unassigned); list rows carry it as a column."""
        return self.ingeniero.usuario_id if self.ingeniero is not None else None

    @property
    def solicitante_nombre(self) -> str:
        if self.usuario is not None:
            return self.usuario.nombre
        return self.cliente.nombre if self.cliente is not None else ""

    def __repr__(self) -> str:
        return f"<Ticket {self.numero_ticket} {self.estado}>"


# When a running ticket becomes overdue (sla.vencido_clause): the first-response due time while
# nobody has answered, if it comes first, else the resolution one; NULL without a due time. No
# bound parameter in it, so that the index below is on this very expression: the overdue count
# is then a range count per running estado instead of a scan of every ticket.
VENCE_EFECTIVO = case(
    (and_(Ticket.fecha_primera_respuesta.is_(None),
          or_(Ticket.sla_resolucion_vence.is_(None),
              Ticket.sla_primera_respuesta_vence < Ticket.sla_resolucion_vence)),
     Ticket.sla_primera_respuesta_vence),
    else_=Ticket.sla_resolucion_vence)
Index("ix_tickets_estado_vence", Ticket.estado, Grouping(VENCE_EFECTIVO))  # PostgreSQL wants it in parentheses


@event.listens_for(Ticket, "after_update")
def _fecha_a_sus_etiquetas(mapper, connection, ticket: Ticket) -> None:
    """A ticket whose fecha_creacion changed (the demo seed re-dates its tickets) carries the new
    date to its tag links in the same flush, before any link of it is added or removed there. A
    Core UPDATE of the date must update the links itself (the ORM deletes a link by its date too)."""
    if inspect(ticket).attrs.fecha_creacion.history.has_changes():
        connection.execute(ticket_etiquetas.update().where(ticket_etiquetas.c.ticket_id == ticket.id)
                           .values(fecha_creacion=ticket.fecha_creacion))


class Mensaje(db.Model):
    """Public thread: requester <-> staff. ``leido`` is set when the other side reads it."""

    __tablename__ = "mensajes"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    autor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("usuarios.id"), index=True)
    cliente_id: Mapped[Optional[int]] = mapped_column(ForeignKey("clientes.id"), index=True)
    es_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    cuerpo: Mapped[str] = mapped_column(Text)
    leido: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    fecha_lectura: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    fecha: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="mensajes")
    autor: Mapped[Optional[Usuario]] = relationship()
    cliente: Mapped[Optional[Cliente]] = relationship()

    @property
    def autor_nombre(self) -> str:
        if self.autor is not None:
            return self.autor.nombre
        return self.cliente.nombre if self.cliente is not None else ""


class NotaInterna(db.Model):
    """Staff-only note. Never serialized for usuario or cliente."""

    __tablename__ = "notas_internas"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    autor_id: Mapped[int] = mapped_column(ForeignKey("usuarios.id"))
    texto: Mapped[str] = mapped_column(Text)
    fecha: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="notas")
    autor: Mapped[Usuario] = relationship()


class Evento(db.Model):
    """One row per change of a ticket: who, when, which field, old -> new."""

    __tablename__ = "eventos"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("usuarios.id"))
    tipo: Mapped[str] = mapped_column(String(30))
    campo: Mapped[Optional[str]] = mapped_column(String(40))
    antes: Mapped[Optional[str]] = mapped_column(Text)
    despues: Mapped[Optional[str]] = mapped_column(Text)
    # Internal-note events are hidden from the requester's timeline.
    interno: Mapped[bool] = mapped_column(Boolean, default=False)
    fecha: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="eventos")
    actor: Mapped[Optional[Usuario]] = relationship()


# --- email: outbox and Configuración > Email ----------------------------------------------

ESTADOS_CORREO = ("pendiente", "enviando", "enviado", "fallido")


CANALES_SALIDA = ("email", "whatsapp")
ESTADOS_SALIDA = ("pendiente", "enviando", "enviado", "fallido")


class Envio(db.Model):
    """Outbox: one outgoing message on any channel, written in the same transaction as the
    change that caused it.

    Senders (``outbox.enviar_pendientes``) claim rows with a conditional UPDATE, so several may
    run at once and each message leaves once; the channel's adapter (``outbox.registrar_canal``)
    turns the row into an SMTP send or a Graph API call. Email rows use asunto/cuerpo_*/adjuntos
    (attachments are specs, built at send time); a ticket email keeps in ``datos`` what its body
    needs and the sender renders it into cuerpo_* (email_manager.renderizar); other channels put
    their payload in ``datos``."""

    __tablename__ = "envios"
    __table_args__ = (Index("ix_envios_estado_proximo", "estado", "proximo_intento"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    canal: Mapped[str] = mapped_column(String(20), default="email", server_default="email", index=True)
    tipo: Mapped[str] = mapped_column(String(40))
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    destinatarios: Mapped[str] = mapped_column(Text)  # comma-separated addresses, or the phone number
    asunto: Mapped[Optional[str]] = mapped_column(String(400))
    cuerpo_html: Mapped[Optional[str]] = mapped_column(Text)
    cuerpo_texto: Mapped[str] = mapped_column(Text, default="")
    adjuntos: Mapped[list] = mapped_column(JSON, default=list)
    datos: Mapped[Optional[dict]] = mapped_column(JSON)  # channel payload (e.g. a WhatsApp message)
    id_externo: Mapped[Optional[str]] = mapped_column(String(255), index=True)  # Message-ID, wamid
    estado: Mapped[str] = mapped_column(String(10), default="pendiente")
    intentos: Mapped[int] = mapped_column(Integer, default=0)
    proximo_intento: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ultimo_error: Mapped[Optional[str]] = mapped_column(Text)
    reclamado_por: Mapped[Optional[str]] = mapped_column(String(80))
    reclamado_en: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    fecha_creacion: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    fecha_envio: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    ticket: Mapped[Optional[Ticket]] = relationship()


class ConfiguracionEmail(db.Model):
    """Configuración > Email: a single row (id 1). A NULL column falls back to .env (MAIL_*)."""

    __tablename__ = "configuracion_email"

    id: Mapped[int] = mapped_column(primary_key=True)
    servidor: Mapped[Optional[str]] = mapped_column(String(255))
    puerto: Mapped[Optional[int]] = mapped_column(Integer)
    usuario: Mapped[Optional[str]] = mapped_column(String(255))
    # SMTP AUTH needs it back, so it is encrypted (not hashed) at rest; write-only: never
    # returned by the API nor rendered back.
    password: Mapped[Optional[str]] = mapped_column(EncryptedText(1024))
    usar_tls: Mapped[Optional[bool]] = mapped_column(Boolean)
    usar_ssl: Mapped[Optional[bool]] = mapped_column(Boolean)
    remitente_nombre: Mapped[Optional[str]] = mapped_column(String(120))
    remitente_email: Mapped[Optional[str]] = mapped_column(String(254))
    contactos_notificacion: Mapped[Optional[str]] = mapped_column(Text)
    # Email in (correo_entrante.py): the IMAP mailbox `flask fetch-email` polls (over IMAP_*), the
    # unknown-sender policy (over INBOUND_UNKNOWN_SENDER) and the size limit (over INBOUND_MAX_BYTES).
    imap_servidor: Mapped[Optional[str]] = mapped_column(String(255))
    imap_puerto: Mapped[Optional[int]] = mapped_column(Integer)
    imap_ssl: Mapped[Optional[bool]] = mapped_column(Boolean)
    imap_usuario: Mapped[Optional[str]] = mapped_column(String(255))
    imap_password: Mapped[Optional[str]] = mapped_column(EncryptedText(1024))  # write-only, like ``password``
    imap_carpeta: Mapped[Optional[str]] = mapped_column(String(255))
    entrante_desconocidos: Mapped[Optional[str]] = mapped_column(String(10))  # crear | ignorar
    entrante_max_mb: Mapped[Optional[int]] = mapped_column(Integer)
    fecha_actualizacion: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    actualizado_por_id: Mapped[Optional[int]] = mapped_column(ForeignKey("usuarios.id"))


class CambioConfiguracion(db.Model):
    """Audit of settings changes: who, when, which fields (secrets named, never their values)."""

    __tablename__ = "cambios_configuracion"

    id: Mapped[int] = mapped_column(primary_key=True)
    seccion: Mapped[str] = mapped_column(String(30), index=True)
    usuario_id: Mapped[Optional[int]] = mapped_column(ForeignKey("usuarios.id"))
    campos: Mapped[list] = mapped_column(JSON, default=list)
    detalle: Mapped[dict] = mapped_column(JSON, default=dict)
    fecha: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    usuario: Mapped[Optional[Usuario]] = relationship()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite: WAL so readers never block the writer, a busy wait, and enforced foreign keys."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


@event.listens_for(Engine, "savepoint")
def _sqlite_savepoint_immediate(conn, name):
    """SQLite: a SAVEPOINT outside a transaction takes the write lock first (BEGIN IMMEDIATE).

    The driver leaves reads outside transactions and begins one at the first INSERT/UPDATE, which
    waits for the lock under the busy timeout. A SAVEPOINT (``begin_nested``: the WhatsApp
    webhook's store, a CSAT rating) would instead open a deferred transaction whose first
    statements read; its first write then finds that another writer committed meanwhile, and
    SQLite refuses to upgrade that snapshot: "database is locked" at once, no waiting
    (SQLITE_BUSY_SNAPSHOT). Taking the lock up front makes it wait its turn like any write."""
    if conn.dialect.name == "sqlite":
        sqlite_tomar_escritura(conn)


def sqlite_tomar_escritura(conn) -> None:
    """SQLite: begin ``conn``'s transaction now holding the write lock (BEGIN IMMEDIATE; waits its
    turn under the busy timeout), unless one is open. Writers take turns, so what the transaction
    reads from here on cannot change before it commits."""
    if not conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# --- channels: conversations, communications, attachments (shared by WhatsApp, email, apps) ------

CANALES_CONVERSACION = ("whatsapp", "email")
ESTADOS_CONVERSACION = ("bot", "escalada", "cerrada")
DIRECCIONES = ("entrante", "saliente")


class Conversacion(db.Model):
    """The thread of one contact on one channel (a WhatsApp number; an email thread).

    ``contacto`` is the normalised address (E.164 phone or lower-case email); ``cliente_id`` is
    set when the contact is known (or linked by hand later); ``ticket_id`` is the ticket it
    escalated to. Seed 004's conversaciones-whatsapp are the rows with canal='whatsapp'."""

    __tablename__ = "conversaciones"
    __table_args__ = (
        # The inbox: newest activity first within a channel.
        Index("ix_conversaciones_canal_ultimo", "canal", "ultimo_mensaje_en"),
        Index("ix_conversaciones_canal_contacto", "canal", "contacto"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    canal: Mapped[str] = mapped_column(String(20))
    contacto: Mapped[str] = mapped_column(String(254))
    nombre_contacto: Mapped[Optional[str]] = mapped_column(String(120))  # e.g. WhatsApp profile name
    cliente_id: Mapped[Optional[int]] = mapped_column(ForeignKey("clientes.id", ondelete="SET NULL"), index=True)
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    estado: Mapped[str] = mapped_column(String(10), default="bot", index=True)
    no_leidos: Mapped[int] = mapped_column(Integer, default=0)
    fallos_bot: Mapped[int] = mapped_column(Integer, default=0)  # bot misses in a row (escalation rule)
    ultimo_mensaje_en: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    ultimo_entrante_en: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)  # WhatsApp's 24-hour window
    fecha_creacion: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cliente: Mapped[Optional[Cliente]] = relationship()
    ticket: Mapped[Optional[Ticket]] = relationship(foreign_keys=[ticket_id])


class Comunicacion(db.Model):
    """One message on any channel, inbound or outbound. ``id_externo`` (the WhatsApp ``wamid``,
    the email ``Message-ID``) is unique per channel: it is the idempotency key of the adapters."""

    __tablename__ = "comunicaciones"
    __table_args__ = (
        UniqueConstraint("canal", "id_externo", name="uq_comunicaciones_canal_id_externo"),
        Index("ix_comunicaciones_conversacion_fecha", "conversacion_id", "fecha"),
        Index("ix_comunicaciones_canal_fecha", "canal", "fecha"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    canal: Mapped[str] = mapped_column(String(20))
    direccion: Mapped[str] = mapped_column(String(10))  # entrante | saliente
    id_externo: Mapped[Optional[str]] = mapped_column(String(255))
    de: Mapped[Optional[str]] = mapped_column(String(320))
    para: Mapped[Optional[str]] = mapped_column(Text)
    asunto: Mapped[Optional[str]] = mapped_column(String(400))
    tipo: Mapped[str] = mapped_column(String(20), default="text")  # text, image, audio, document, ...
    cuerpo: Mapped[str] = mapped_column(Text, default="")  # what is shown (quotes/signatures trimmed)
    original: Mapped[Optional[str]] = mapped_column(Text)  # the raw message/payload, kept whole
    datos: Mapped[Optional[dict]] = mapped_column(JSON)  # channel details (media id, location, ...)
    # recibido, procesado, fallido (inbound); pendiente, enviado, entregado, leido, fallido (outbound)
    estado: Mapped[str] = mapped_column(String(12), default="recibido", index=True)
    error: Mapped[Optional[str]] = mapped_column(Text)
    es_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    conversacion_id: Mapped[Optional[int]] = mapped_column(ForeignKey("conversaciones.id", ondelete="SET NULL"))
    cliente_id: Mapped[Optional[int]] = mapped_column(ForeignKey("clientes.id", ondelete="SET NULL"), index=True)
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    autor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("usuarios.id"))  # staff who wrote it
    envio_id: Mapped[Optional[int]] = mapped_column(ForeignKey("envios.id", ondelete="SET NULL"), index=True)
    fecha: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    conversacion: Mapped[Optional[Conversacion]] = relationship()
    cliente: Mapped[Optional[Cliente]] = relationship()
    ticket: Mapped[Optional[Ticket]] = relationship(foreign_keys=[ticket_id])
    autor: Mapped[Optional[Usuario]] = relationship()


class Adjunto(db.Model):
    """A stored file (adjuntos.py): content-addressed on disk under UPLOAD_DIR by ``sha256``,
    never by the user's file name. It belongs to a ticket and, within it, to a public message,
    an internal note (then as hidden as the note) or a communication."""

    __tablename__ = "adjuntos"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    nombre: Mapped[str] = mapped_column(String(255))  # the user's file name, for display only
    tipo_mime: Mapped[str] = mapped_column(String(100))  # sniffed from the content
    tamano: Mapped[int] = mapped_column(Integer)
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    mensaje_id: Mapped[Optional[int]] = mapped_column(ForeignKey("mensajes.id", ondelete="CASCADE"), index=True)
    nota_id: Mapped[Optional[int]] = mapped_column(ForeignKey("notas_internas.id", ondelete="CASCADE"), index=True)
    comunicacion_id: Mapped[Optional[int]] = mapped_column(ForeignKey("comunicaciones.id", ondelete="CASCADE"),
                                                           index=True)
    subido_por_id: Mapped[Optional[int]] = mapped_column(ForeignKey("usuarios.id"))
    fecha: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- issue 11: attachments shown with their message / note / ticket (no schema change) ----------

Mensaje.adjuntos = relationship(Adjunto, primaryjoin=Adjunto.mensaje_id == Mensaje.id, viewonly=True,
                                order_by=Adjunto.id, lazy="selectin")
NotaInterna.adjuntos = relationship(Adjunto, primaryjoin=NotaInterna.id == Adjunto.nota_id, viewonly=True,
                                    order_by=Adjunto.id, lazy="selectin")
Ticket.adjuntos_propios = relationship(
    Adjunto, primaryjoin=(Ticket.id == Adjunto.ticket_id) & Adjunto.mensaje_id.is_(None) & Adjunto.nota_id.is_(None)
    & Adjunto.comunicacion_id.is_(None), viewonly=True, order_by=Adjunto.id)


class SoporteCategoria(db.Model):
    """Seed 003's category value (general, technical, billing, flight, order, or any other the
    app sends) → a Mesa category, set by an admin. Without a row, SUPPORT_CATEGORIAS (config)
    decides, then General."""

    __tablename__ = "soporte_categorias"

    id: Mapped[int] = mapped_column(primary_key=True)
    clave: Mapped[str] = mapped_column(String(40), unique=True)
    categoria_id: Mapped[int] = mapped_column(ForeignKey("categorias.id"), index=True)

    categoria: Mapped[Categoria] = relationship()
# --- issue 9: WhatsApp channel (bot rules, Configuración > WhatsApp) ------------------------------

class ReglaBot(db.Model):
    """One keyword rule of the WhatsApp bot: any of ``palabras_clave`` (comma-separated, matched
    accent- and case-insensitively as whole words) → ``respuesta``. Lowest ``orden`` wins."""

    __tablename__ = "reglas_bot"
    __table_args__ = (Index("ix_reglas_bot_activa_orden", "activa", "orden"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    palabras_clave: Mapped[str] = mapped_column(String(500))
    respuesta: Mapped[str] = mapped_column(Text)
    idioma: Mapped[str] = mapped_column(String(5), default="es")
    activa: Mapped[bool] = mapped_column(Boolean, default=True)
    orden: Mapped[int] = mapped_column(Integer, default=0)


class ConfiguracionWhatsapp(db.Model):
    """Configuración > WhatsApp: a single row (id 1). A NULL column falls back to .env (WHATSAPP_*).
    The access token and the app secret are write-only and encrypted at rest."""

    __tablename__ = "configuracion_whatsapp"

    id: Mapped[int] = mapped_column(primary_key=True)
    verify_token: Mapped[Optional[str]] = mapped_column(EncryptedText(1024))
    app_secret: Mapped[Optional[str]] = mapped_column(EncryptedText(1024))
    access_token: Mapped[Optional[str]] = mapped_column(EncryptedText(2048))
    phone_number_id: Mapped[Optional[str]] = mapped_column(String(40))
    graph_base: Mapped[Optional[str]] = mapped_column(String(255))
    plantilla: Mapped[Optional[str]] = mapped_column(String(120))  # approved template, outside 24 h
    saludo: Mapped[Optional[str]] = mapped_column(Text)
    fuera_de_horario: Mapped[Optional[str]] = mapped_column(Text)
    horario: Mapped[Optional[str]] = mapped_column(String(20))  # "09:00-18:00", Monday to Friday
    palabras_escalado: Mapped[Optional[str]] = mapped_column(Text)
    fallos_para_escalar: Mapped[Optional[int]] = mapped_column(Integer)
    fecha_actualizacion: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    actualizado_por_id: Mapped[Optional[int]] = mapped_column(ForeignKey("usuarios.id"))


# --- issue 12: SLA in business hours, automatic assignment, alerts, in-app notifications ---------

SLA_TIPOS_ALERTA = ("primera_respuesta_aviso", "primera_respuesta_vencida", "resolucion_aviso",
                    "resolucion_vencida", "critico_sin_asignar", "sin_candidato")


class ConfiguracionSLA(db.Model):
    """Configuración > SLA: a single row (id 1, inserted by migration 0009 so new installs have
    automatic assignment on). Without the row: a 24x7 calendar, the default targets, no auto-assign.

    ``horario`` maps weekday ("0" Monday … "6" Sunday) to ``["09:00", "18:00"]`` (office time zone
    APP_TIMEZONE); a missing weekday is a day off. ``feriados`` lists ISO dates."""

    __tablename__ = "configuracion_sla"

    id: Mapped[int] = mapped_column(primary_key=True)
    horario: Mapped[dict] = mapped_column(JSON, default=dict)
    feriados: Mapped[list] = mapped_column(JSON, default=list)
    umbral_aviso_pct: Mapped[int] = mapped_column(Integer, default=80)
    minutos_critico_sin_asignar: Mapped[int] = mapped_column(Integer, default=15)
    asignacion_automatica: Mapped[bool] = mapped_column(Boolean, default=True)
    fecha_actualizacion: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)


class PoliticaSLA(db.Model):
    """Targets in business minutes per prioridad, optionally narrowed to one categoría (wins)."""

    __tablename__ = "politicas_sla"
    __table_args__ = (UniqueConstraint("prioridad", "categoria_id", name="uq_politicas_sla_prioridad_categoria"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prioridad: Mapped[str] = mapped_column(String(10))
    categoria_id: Mapped[Optional[int]] = mapped_column(ForeignKey("categorias.id", ondelete="CASCADE"), index=True)
    primera_respuesta_min: Mapped[int] = mapped_column(Integer)
    resolucion_min: Mapped[int] = mapped_column(Integer)

    categoria: Mapped[Optional[Categoria]] = relationship()


class AlertaSLA(db.Model):
    """One row per (ticket, tipo): inserting it is the claim, so each alert leaves once even with
    several ``sla-tick`` processes (INSERT … ON CONFLICT DO NOTHING)."""

    __tablename__ = "alertas_sla"
    __table_args__ = (
        UniqueConstraint("ticket_id", "tipo", name="uq_alertas_sla_ticket_tipo"),
        # "was this kind of alert sent since T?" (alertas.alertar_sin_candidato, once per period)
        Index("ix_alertas_sla_tipo_fecha", "tipo", "fecha"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    tipo: Mapped[str] = mapped_column(String(30))
    fecha: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notificacion(db.Model):
    """An in-app notification (the bell), linking to its ticket."""

    __tablename__ = "notificaciones"
    __table_args__ = (
        # The bell: a user's unread count and newest first.
        Index("ix_notificaciones_usuario_leida_id", "usuario_id", "leida", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    usuario_id: Mapped[int] = mapped_column(ForeignKey("usuarios.id", ondelete="CASCADE"))
    ticket_id: Mapped[Optional[int]] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    tipo: Mapped[str] = mapped_column(String(30))
    texto: Mapped[str] = mapped_column(String(400))
    leida: Mapped[bool] = mapped_column(Boolean, default=False)
    fecha: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Optional[Ticket]] = relationship()


class PreferenciaEmail(db.Model):
    """A user's choice about one kind of notification email (notificaciones.PREFERENCIAS).
    No row means the default: on. Receipts and account emails have no key: always sent."""

    __tablename__ = "preferencias_email"
    __table_args__ = (UniqueConstraint("usuario_id", "clave", name="uq_preferencias_email_usuario_clave"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    usuario_id: Mapped[int] = mapped_column(ForeignKey("usuarios.id", ondelete="CASCADE"))
    clave: Mapped[str] = mapped_column(String(30))
    email: Mapped[bool] = mapped_column(Boolean, default=True)


class Valoracion(db.Model):
    """CSAT: the requester's rating of a closed ticket, once per ticket (issue 12). The engineer
    and categoría are kept as they were when rated, for the results per engineer and category."""

    __tablename__ = "valoraciones"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), unique=True)
    puntuacion: Mapped[int] = mapped_column(Integer)  # 1..5
    comentario: Mapped[Optional[str]] = mapped_column(Text)
    ingeniero_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ingenieros.id", ondelete="SET NULL"), index=True)
    categoria_id: Mapped[Optional[int]] = mapped_column(ForeignKey("categorias.id", ondelete="SET NULL"), index=True)
    fecha: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


ESTADOS_EXPORTACION = ("pendiente", "en_curso", "listo", "fallido", "expirado")


class Exportacion(db.Model):
    """A background Excel export (issue 13): the query it was asked for, its progress and its file.

    Workers (``exportaciones.ejecutar_pendientes``) claim a 'pendiente' row with a conditional
    UPDATE, as the outbox does; ``latido`` is refreshed with every progress write, so a job whose
    worker died (no beat for EXPORT_CLAIM_TIMEOUT_SECONDS) goes back to 'pendiente'. A finished
    file lives until ``expira_en``; the worker then deletes it and marks the row 'expirado'."""

    __tablename__ = "exportaciones"
    __table_args__ = (
        # The claim (oldest 'pendiente' first), the reclaim of stale 'en_curso' and the expiry sweep.
        Index("ix_exportaciones_estado_id", "estado", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    usuario_id: Mapped[int] = mapped_column(ForeignKey("usuarios.id", ondelete="CASCADE"), index=True)
    tipo: Mapped[str] = mapped_column(String(10))  # reports.TIPOS
    filtros: Mapped[dict] = mapped_column(JSON, default=dict)  # the list filters, as the query string gave them
    estado: Mapped[str] = mapped_column(String(10), default="pendiente")
    filas_escritas: Mapped[int] = mapped_column(Integer, default=0)
    filas_total: Mapped[Optional[int]] = mapped_column(Integer)
    archivo: Mapped[Optional[str]] = mapped_column(String(500))  # path of the finished file
    error: Mapped[Optional[str]] = mapped_column(Text)
    intentos: Mapped[int] = mapped_column(Integer, default=0)
    reclamado_por: Mapped[Optional[str]] = mapped_column(String(80))
    latido: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)  # the running worker's last sign of life
    fecha_creacion: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fecha_inicio: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    fecha_fin: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    expira_en: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    usuario: Mapped[Usuario] = relationship()


class EstadisticaMarginal(db.Model):
    """Ticket counts per value of one dimension (estado, prioridad, categoria id, ingeniero id or
    "" for none, dia: the local day of creation in APP_TIMEZONE), kept by ``acumulados`` in the
    transaction of every ticket change: the statistics of every ticket read a few hundred rows
    instead of scanning the tickets. ``flask estadisticas-reconstruir`` rebuilds it from scratch
    (after a bulk import or an APP_TIMEZONE change)."""

    __tablename__ = "estadisticas_marginales"

    dimension: Mapped[str] = mapped_column(String(12), primary_key=True)
    clave: Mapped[str] = mapped_column(String(40), primary_key=True)
    tickets: Mapped[int] = mapped_column(Integer, default=0)
    abiertos: Mapped[int] = mapped_column(Integer, default=0)  # estado in ESTADOS_ABIERTOS
    primera_n: Mapped[int] = mapped_column(Integer, default=0)  # first-response outcome stored
    primera_ok: Mapped[int] = mapped_column(Integer, default=0)  # ... and met
    resolucion_n: Mapped[int] = mapped_column(Integer, default=0)
    resolucion_ok: Mapped[int] = mapped_column(Integer, default=0)
    fallidos: Mapped[int] = mapped_column(Integer, default=0)  # either target missed (stored outcome)
    # Clock running, no target missed, a due time set (acumulados.pendiente): past due once it passes.
    pendientes: Mapped[int] = mapped_column(Integer, default=0)
    respondidos: Mapped[int] = mapped_column(Integer, default=0)  # fecha_primera_respuesta set
    respuesta_us: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of creation -> first response
    resueltos: Mapped[int] = mapped_column(Integer, default=0)  # fecha_resolucion set
    resolucion_us: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of creation -> resolution
    etiqueta_sla: Mapped[int] = mapped_column(BigInteger, default=0)  # acumulados.ETIQUETA


class ConteoTickets(db.Model):
    """Ticket counts per (estado, prioridad, categoría, ingeniero) combination, a few hundred rows
    kept by ``acumulados`` with ``EstadisticaMarginal``: the exact ``total`` of an admin's list
    filtered on those columns only is a sum over them instead of a COUNT of up to a million
    tickets (issue 13). ``ingeniero`` 0: unassigned (a NULL could not be part of the key)."""

    __tablename__ = "conteo_tickets"

    estado: Mapped[str] = mapped_column(String(15), primary_key=True)
    prioridad: Mapped[str] = mapped_column(String(10), primary_key=True)
    categoria_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ingeniero: Mapped[int] = mapped_column(Integer, primary_key=True)
    tickets: Mapped[int] = mapped_column(Integer, default=0)
