"""People: accounts, engineers and API tokens. Functions flush, never commit."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import lru_cache
from typing import Optional

from flask import current_app, has_app_context
from sqlalchemy import bindparam, event, func, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.security import check_password_hash, generate_password_hash

from errors import N_, Conflict, ValidationFailed
from models import IDIOMAS, ApiToken, Ingeniero, Usuario, db, leer, persistente, utcnow
from schemas import IngenieroCreate, IngenieroUpdate, UsuarioCreate


def _check_unique(username: Optional[str], email: Optional[str], exclude_id: Optional[int] = None) -> None:
    fields = {}
    conds = []
    if username:
        conds.append(func.lower(Usuario.username) == username.lower())
    if email:
        conds.append(func.lower(Usuario.email) == email.lower())
    if not conds:
        return
    stmt = select(Usuario).where(or_(*conds))
    if exclude_id is not None:
        stmt = stmt.where(Usuario.id != exclude_id)
    for other in db.session.execute(stmt).scalars():
        if username and other.username.lower() == username.lower():
            fields["username"] = N_("Already taken.")
        if email and other.email.lower() == email.lower():
            fields["email"] = N_("Already in use.")
    if fields:
        raise Conflict("Username or email already in use.", code="duplicate", fields=fields)


def crear_usuario(data: UsuarioCreate) -> Usuario:
    _check_unique(data.username, data.email)
    usuario = Usuario(username=data.username, nombre=data.nombre, email=str(data.email).lower(),
                      rol=data.rol, idioma=data.idioma, activo=True)
    usuario.set_password(data.password)
    db.session.add(usuario)
    if data.rol == "ingeniero":
        db.session.add(Ingeniero(usuario=usuario, especialidad=data.especialidad or "General",
                                 telefono=data.telefono, disponible=True))
    try:
        db.session.flush()
    except IntegrityError:  # taken by a concurrent request between the check and the INSERT
        db.session.rollback()
        raise Conflict("Username or email already in use.", code="duplicate",
                       fields={"username": "Already taken."}) from None
    return usuario


def crear_ingeniero(data: IngenieroCreate) -> Ingeniero:
    usuario = crear_usuario(UsuarioCreate(
        username=data.username, nombre=data.nombre, email=data.email, password=data.password,
        rol="ingeniero", idioma=data.idioma, especialidad=data.especialidad, telefono=data.telefono))
    usuario.ingeniero.disponible = data.disponible
    db.session.flush()
    return usuario.ingeniero


def actualizar_ingeniero(ingeniero: Ingeniero, data: IngenieroUpdate, actor: Optional[Usuario] = None) -> Ingeniero:
    changes = data.model_dump(exclude_unset=True)
    if actor is not None and changes.get("activo") is not None:
        cambiar_activo(ingeniero.usuario, actor, changes["activo"])
    if not changes:
        raise ValidationFailed("Nothing to change.", code="empty_update")
    if changes.get("email"):
        _check_unique(None, str(changes["email"]), exclude_id=ingeniero.usuario_id)
        ingeniero.usuario.email = str(changes["email"]).lower()
    for campo in ("nombre", "activo"):
        if changes.get(campo) is not None:
            setattr(ingeniero.usuario, campo, changes[campo])
    for campo in ("especialidad", "telefono", "disponible"):
        if campo in changes and (changes[campo] is not None or campo == "telefono"):
            setattr(ingeniero, campo, changes[campo])
    db.session.flush()
    return ingeniero


def cambiar_idioma(usuario: Usuario, idioma: str) -> Usuario:
    """The language of the user's interface and emails."""
    if idioma not in IDIOMAS:
        raise ValidationFailed("Unknown language.", fields={"idioma": "Use one of: " + ", ".join(IDIOMAS)})
    usuario.idioma = idioma
    db.session.flush()
    return usuario


def cambiar_activo(usuario: Usuario, actor: Usuario, activo: bool) -> Usuario:
    """Deactivate (no login, no token) or reactivate an account; nobody deactivates themselves."""
    if not activo and usuario.id == actor.id:
        raise Conflict("You cannot deactivate your own account.", code="self_deactivation")
    usuario.activo = activo
    db.session.flush()
    return usuario


def ingenieros() -> list[Ingeniero]:
    # contains_eager: the account comes with the same query, not one query per engineer
    return list(db.session.execute(
        select(Ingeniero).join(Ingeniero.usuario).options(contains_eager(Ingeniero.usuario))
        .order_by(Usuario.nombre)).scalars())


@lru_cache(maxsize=4)
def _hash_señuelo(method: str) -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def autenticar(username: str, password: str) -> Optional[Usuario]:
    """The active account with these credentials, or None. An unknown username costs the same
    password hash as a known one (no enumeration by timing)."""
    usuario = db.session.execute(
        select(Usuario).where(func.lower(Usuario.username) == username.strip().lower())
    ).scalar_one_or_none()
    if usuario is None:
        method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt") if has_app_context() else "scrypt"
        check_password_hash(_hash_señuelo(method), password)
        return None
    if not usuario.check_password(password) or not usuario.activo:
        return None
    return usuario


def cerrar_sesiones(usuario: Usuario) -> None:
    """Every session cookie issued so far for ``usuario`` stops working (auth.load_user)."""
    usuario.sesion_version = (usuario.sesion_version or 1) + 1
    db.session.flush()


@event.listens_for(Session, "before_flush")
def _credenciales_cambiadas(session, flush_context, instances) -> None:
    """Whatever code path changes a password or deactivates an account, its sessions end and
    all its API tokens are revoked in the same transaction (a reactivation revives nothing)."""
    for obj in list(session.dirty):
        if not isinstance(obj, Usuario):
            continue
        estado = inspect(obj)
        clave = estado.attrs.password_hash.history
        activo = estado.attrs.activo.history
        # ``added`` alone: an expired attribute has no loaded old value to compare with.
        if clave.added or (activo.added and activo.added[0] is False):
            obj.sesion_version = (obj.sesion_version or 1) + 1
            session.execute(update(ApiToken).where(ApiToken.usuario_id == obj.id, ApiToken.revocado.is_(False))
                            .values(revocado=True).execution_options(synchronize_session=False))


def emitir_token(usuario: Usuario, nombre: Optional[str] = None) -> tuple[ApiToken, str]:
    """A new Bearer token; the clear text is returned once and only its hash is kept."""
    clear = "mda_" + secrets.token_urlsafe(32)
    dias = current_app.config.get("API_TOKEN_DAYS", 90) if has_app_context() else 90
    token = ApiToken(usuario=usuario, token_hash=ApiToken.hash(clear), nombre=nombre or "api",
                     expira_en=utcnow() + timedelta(days=dias))
    db.session.add(token)
    db.session.flush()
    return token, clear


# A live token of an active account: its user's row, their engineer row (``tickets.scope_clause``
# reads it) and what the token's checks need, in one round trip: every API request pays it.
# Built once, the hash a bound parameter: a statement built per request cost more CPU for its
# cache key than to run. Plain columns, not ``select(Usuario)``: the ORM's loading machinery for
# one row and its joined engineer cost more CPU than the round trip (issue 13); ``models.persistente``
# makes the same objects from the row.
_ATRIBUTOS_USUARIO = tuple(inspect(Usuario).column_attrs)
_ATRIBUTOS_INGENIERO = tuple(inspect(Ingeniero).column_attrs)
_TOKEN_VIGENTE = (select(*(a.columns[0] for a in _ATRIBUTOS_USUARIO),
                         *(a.columns[0].label(f"ingeniero_{a.key}") for a in _ATRIBUTOS_INGENIERO),
                         ApiToken.id.label("token_id"), ApiToken.ultimo_uso, ApiToken.expira_en)
                  .join(ApiToken, ApiToken.usuario_id == Usuario.id)
                  .outerjoin(Ingeniero, Ingeniero.usuario_id == Usuario.id)
                  .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revocado.is_(False),
                         Usuario.activo.is_(True)))


def usuario_por_token(clear: str) -> Optional[Usuario]:
    """The active account of the live Bearer token ``clear`` (not revoked, not expired), or None.
    Read from the database on every call, never cached: a revocation or a deactivation holds from
    the next request on, in every process."""
    fila = leer(_TOKEN_VIGENTE, {"token_hash": ApiToken.hash(clear)}).one_or_none()
    if fila is None:
        return None
    *columnas, token_id, ultimo_uso, expira_en = fila
    now = utcnow()
    if expira_en is not None and expira_en <= now:
        return None
    n = len(_ATRIBUTOS_USUARIO)
    usuario = persistente(Usuario, _ATRIBUTOS_USUARIO, columnas[:n])
    if "ingeniero" not in inspect(usuario).dict:  # not the session's own object, loaded already
        ingeniero = columnas[n] is not None and persistente(Ingeniero, _ATRIBUTOS_INGENIERO, columnas[n:])
        set_committed_value(usuario, "ingeniero", ingeniero or None)
    if ultimo_uso is None or now - ultimo_uso > timedelta(minutes=1):
        # At most one write a minute per token; committed at once, the request may only read.
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(ultimo_uso=now)
                           .execution_options(synchronize_session=False))
        db.session.commit()
    return usuario


def revocar_token(clear: str) -> bool:
    token = db.session.execute(
        select(ApiToken).where(ApiToken.token_hash == ApiToken.hash(clear))).scalar_one_or_none()
    if token is None or token.revocado:
        return False
    token.revocado = True
    token.ultimo_uso = utcnow()
    db.session.flush()
    return True
