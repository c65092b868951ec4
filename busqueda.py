"""Full-text search of the tickets: what ``q`` means in every ticket list, export and panel.

The index (migration 0014) holds one document per ticket: número, título, requester, descripción
and the public thread. Internal notes are not indexed, so a search never reveals them to anyone.
On PostgreSQL the requester's user name and username are not in it (migration 0025): they are
looked up in ``usuarios`` and reach the tickets through the requester index, each word found in
the document or in the requester's names (_por_solicitante).
It is kept by database triggers in the same transaction as each write. SQLite: FTS5 with
``unicode61 remove_diacritics 2``; PostgreSQL: tsvector + GIN in the ``mesa_busqueda``
configuration (``simple`` behind ``unaccent``). Accents and case never matter, and every word is
a prefix, one letter too ("impre" finds "Impresión", "Ana P" finds "Ana Pérez" as it is typed);
all words must match.

User input never reaches MATCH / to_tsquery syntax: it is cut into words of letters and digits,
each quoted, so ``"``, ``*``, ``:``, ``&``, ``(``, NEAR, OR... are just separators or words.
A number (``123``, ``TKT-000123``) also finds that ticket exactly (the one lookup by equality).

Results are ranked (bm25 / ts_rank, número and título above requester, above descripción, above
the thread) when no explicit order is asked and the words match at most ``LIMITE_RANGO``
tickets; a broader search (a word in thousands of tickets) comes newest first, since ranking
every match costs more than it tells apart.

The plan follows that breadth (one bounded count per request, ``_amplia``). A narrow search
starts from its matches (PostgreSQL: ``id = ANY(ARRAY(…))``, SQLite: the rowid list). A broad
one walks the list's own order (the date index) and stops at the page: PostgreSQL as a
semi-join probing the tsvector by primary key; SQLite testing each ticket with one FTS5 seek
when the words are dense (``_densa``: a tenth of the newest tickets match; "impresora" is in
72 %), else probing the matches listed once (a requester's 5,000 of a million: a seek per
ticket walked would cost more than the list). A per-ticket test needs exact terms: FTS5 merges
a prefix's doclists at every MATCH, so each word is spelled as the terms it begins, read from
the index's vocabulary (migration 0021, ``consulta_por_fila``: "impre" → "impresora"; 2 and 3
letters have prefix indexes of their own). A search list counts its matches only up to
``TOPE_TOTAL`` ("more than 1,000"): for a broad search by words on SQLite, in a statement of its own
driven by the search index and stopping at ``TOPE_TOTAL + 1`` (``_hallados_aparte``; walking
the date order to the thousandth match cost 110 ms at a million tickets); otherwise the ids
of the first ``TOPE_TOTAL + 1`` come from the same statement as the page (``paginar``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

from flask import g, has_app_context
from markupsafe import Markup, escape
from sqlalchemy import (
    and_,
    any_,
    bindparam,
    case,
    column,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    text,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.types import Float, Integer, String

from models import TABLA_BUSQUEDA, Cliente, Mensaje, Ticket, Usuario, db

MAX_TERMINOS = 8
MAX_LARGO_TERMINO = 64
LIMITE_RANGO = 2000
# A search list counts its matches up to here; beyond, the total is "more than TOPE_TOTAL".
TOPE_TOTAL = 1000
# Markers around a hit in a snippet: control characters no text we show contains; the snippet
# is escaped first and only then are they turned into <mark> (see resaltar).
ABRE, CIERRA = "\x02", "\x03"

_TERMINO = re.compile(r"[^\W_]+")
_NUMERO = re.compile(r"^\s*(?:tkt\s*-?\s*)?#?0*(\d{1,9})\s*$", re.IGNORECASE)
# bm25 weights of the FTS5 columns: numero, titulo, solicitante, descripcion, hilo.
_PESOS_SQLITE = (10.0, 8.0, 4.0, 2.0, 1.0)
_CONFIG_PG = literal_column("'mesa_busqueda'::regconfig")
# ts_rank of one lexeme of weight B (the requester's names in the document before 0025).
RANGO_SOLICITANTE = 0.2432

_fts = table(TABLA_BUSQUEDA, column("rowid"))
# The index's vocabulary (migration 0021): a word is spelled as the terms it begins (_terminos_de).
_VOCABULARIO = TABLA_BUSQUEDA + "_vocab"
# A word spelled as more terms than this keeps its prefix form (and a broad search its old plan).
MAX_EXPANSION = 8
# A broad search tests ticket by ticket when at least this share of the newest MUESTRA match.
MUESTRA = 1000
DENSIDAD_POR_FILA = 0.1
# Words of these lengths have FTS5 prefix indexes of their own (migration 0014: prefix = '2 3').
_LARGOS_CON_INDICE = (2, 3)
_ASCII = re.compile(r"^[a-z0-9]+$")
_pg = table(TABLA_BUSQUEDA, column("ticket_id"), column("documento"))


def terminos(q: Optional[str]) -> list[str]:
    """The words of ``q`` (letters and digits only, lower-case, at most MAX_TERMINOS)."""
    texto = unicodedata.normalize("NFC", q or "")
    return [t.lower()[:MAX_LARGO_TERMINO] for t in _TERMINO.findall(texto)][:MAX_TERMINOS]


def numero_exacto(q: Optional[str]) -> Optional[str]:
    """``TKT-000123`` when ``q`` names a ticket number (``123``, ``#123``, ``tkt-123``)."""
    m = _NUMERO.match(q or "")
    return f"TKT-{int(m.group(1)):06d}" if m else None


def _postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def consulta_fts5(palabras: list[str]) -> str:
    """The FTS5 MATCH string: each word a quoted string (always a prefix), ANDed."""
    return " ".join('"' + p.replace('"', '""') + '"*' for p in palabras)


def consulta_tsquery(palabras: list[str], operador: str = "&") -> str:
    """The to_tsquery string: each word a quoted lexeme (always a prefix), ANDed (or ORed)."""
    return f" {operador} ".join("'" + p.replace("'", "''").replace("\\", "") + "':*"
                      for p in palabras)


def _tsquery(palabras: list[str], operador: str = "&"):
    # Written into the statement, not bound: a read's statements stay prepared on PostgreSQL
    # (transacciones.py), and the generic plan of a bound tsquery assumes a few hundred matches,
    # so a broad two-word count read 60,000 index entries (2 → 8 ms at 100k). The words are
    # letters and digits only (terminos) and the literal is escaped like any other.
    return func.to_tsquery(_CONFIG_PG, literal(consulta_tsquery(palabras, operador), literal_execute=True))


def _solicitantes(palabras: list[str]) -> dict[frozenset[int], list[int]]:
    """PostgreSQL: the users whose names match at least one of ``palabras``, grouped by the
    positions of the words they match (_lectura_pg)."""
    return _lectura_pg(palabras, LIMITE_RANGO + 1)[2]


def _documento_coincide(palabras: list[str]):
    """The ticket's document holds ``palabras`` (PostgreSQL; one probe by primary key). A scalar
    subquery, not EXISTS: the planner, which guesses a prefix's matches low, would hash every
    match of EXISTS once (75,000 of "impre" at 100k, 28 ms) before a walk that needs 30."""
    return select(_pg.c.documento.op("@@")(_tsquery(palabras))).where(
        _pg.c.ticket_id == Ticket.id).scalar_subquery()


def _de_solicitantes(usuarios: list[int]):
    # One requester as an equality: ix_tickets_usuario_fecha then gives their tickets in date
    # order (an ANY walked the whole date index for them: 22 ms → 0.1 ms at a million).
    if len(usuarios) == 1:
        return Ticket.usuario_id == bindparam("solicitante", usuarios[0], unique=True)
    return Ticket.usuario_id == any_(bindparam("solicitantes", usuarios, type_=ARRAY(Integer), unique=True))


def _por_solicitante(palabras: list[str]) -> list:
    """PostgreSQL: the tickets found through their requester, one condition per group of users
    matching the same words: requested by one of them, and the other words in the document
    (a ticket's text is its document and its requester's names, every word in either)."""
    condiciones = []
    for cuales, usuarios in _solicitantes(palabras).items():
        resto = [p for i, p in enumerate(palabras) if i not in cuales]
        suyo = _de_solicitantes(usuarios)
        condiciones.append(and_(suyo, _documento_coincide(resto)) if resto else suyo)
    return condiciones


def _match(palabras: list[str]):
    return _match_texto(consulta_fts5(palabras))


def _match_texto(consulta: str):
    return literal_column(TABLA_BUSQUEDA).op("MATCH")(literal(consulta))


# The terms in the vocabulary that begin with :p, first to last, one seek each, up to :tope + 1.
_SQL_TERMINOS = text(f"""
    WITH RECURSIVE t(termino, n) AS (
      SELECT (SELECT term FROM {_VOCABULARIO} WHERE term >= :p LIMIT 1), 1
      UNION ALL
      SELECT (SELECT term FROM {_VOCABULARIO} WHERE term >= t.termino || char(0) LIMIT 1), n + 1 FROM t
      WHERE substr(t.termino, 1, length(:p)) = :p AND n <= :tope)
    SELECT termino FROM t WHERE substr(termino, 1, length(:p)) = :p""")


def _terminos_de(palabra: str) -> Optional[list[str]]:
    """The indexed terms that begin with ``palabra`` (SQLite), or None when they are more than
    MAX_EXPANSION or ``palabra`` is not plain once folded as the tokenizer folds it (unicode61
    drops Latin diacritics; any other letter keeps its prefix form rather than guess)."""
    plano = "".join(c for c in unicodedata.normalize("NFD", palabra) if not unicodedata.combining(c))
    if not _ASCII.match(plano):
        return None
    terminos_ = db.session.scalars(_SQL_TERMINOS, {"p": plano, "tope": MAX_EXPANSION}).all()
    return terminos_ if len(terminos_) <= MAX_EXPANSION else None


def consulta_por_fila(palabras: list[str]) -> Optional[str]:
    """The FTS5 MATCH string of ``palabras`` that is cheap to test against one ticket, or None.
    It finds exactly what ``consulta_fts5`` finds: a word of 2 or 3 letters keeps its prefix
    (a prefix index of its own), any other is spelled as the terms it begins, ORed ("impre" →
    "impresora"). A prefix without an index of its own is merged from all its terms' doclists
    at every MATCH, i.e. at every ticket tested; an exact term is seeked. None (SQLite only)
    when a word begins too many terms."""
    grupos = _grupos(palabras)
    return None if grupos is None else " AND ".join("(" + " OR ".join(g_) + ")" for g_ in grupos)


def _consulta_fragmentos(palabras: list[str]) -> Optional[str]:
    """consulta_por_fila when each word is one phrase there as in its prefix form, else None.
    snippet() scores a window by the distinct phrases it holds, so a word spelled as two terms
    could choose another window than its prefix does; one term is the same phrase, seeked."""
    grupos = _grupos(palabras)
    if grupos is None or any(len(g_) > 1 for g_ in grupos):
        return None
    return consulta_por_fila(palabras)


def _grupos(palabras: list[str]) -> Optional[list[list[str]]]:
    """Each word's alternatives in consulta_por_fila (quoted, ready for MATCH), read from the
    vocabulary once per request; None on PostgreSQL or when a word begins too many terms."""
    if _postgresql():
        return None
    memo = g.setdefault("busqueda_grupos", {}) if has_app_context() else {}
    clave = tuple(palabras)
    if clave not in memo:
        grupos = []
        for palabra in palabras:
            if len(palabra) in _LARGOS_CON_INDICE:
                grupos.append([consulta_fts5([palabra])])
                continue
            terminos_ = _terminos_de(palabra)
            if terminos_ is None:
                grupos = None
                break
            # No term begins with it: the quoted word alone, which then matches nothing either.
            grupos.append([f'"{t}"' for t in terminos_ or [palabra]])
        memo[clave] = grupos
    return memo[clave]


def _ids_en_documento(palabras: list[str]):
    """PostgreSQL: the tickets whose document holds ``palabras`` (the GIN index)."""
    return select(_pg.c.ticket_id).where(_pg.c.documento.op("@@")(_tsquery(palabras)))


def _partes_pg(palabras: list[str]) -> list:
    """PostgreSQL: the ids that ``palabras`` find, as the document's matches and those found
    through each group of requesters (a ticket can be in more than one)."""
    return [_ids_en_documento(palabras), *(select(Ticket.id).where(c) for c in _por_solicitante(palabras))]


def _ids_que_coinciden(palabras: list[str]):
    if _postgresql():
        partes = _partes_pg(palabras)
        return partes[0] if len(partes) == 1 else union(*partes)
    por_fila = consulta_por_fila(palabras)
    return select(_fts.c.rowid).where(_match(palabras) if por_fila is None else _match_texto(por_fila))


def _amplia(palabras: list[str]) -> bool:
    """More than LIMITE_RANGO tickets match ``palabras`` (one bounded count, remembered for the
    request: the WHERE and the ORDER BY of one list ask it both)."""
    memo = g.setdefault("busqueda_amplitud", {}) if has_app_context() else {}
    clave = (tuple(palabras), LIMITE_RANGO)
    if clave not in memo:
        memo[clave] = _coincidencias_hasta(palabras, LIMITE_RANGO + 1) > LIMITE_RANGO
    return memo[clave]


def _coinciden(palabras: list[str], con_numero: bool = False):
    """``Ticket.id`` among the matches of ``palabras``, in the form whose plan fits the breadth.
    ``con_numero``: q is also a ticket number, which the list puts first, so every match is
    sorted and the walk never stops early (a seek per ticket would be a seek per match)."""
    amplia = _amplia(palabras)
    if _postgresql():
        # Some words may be in requesters' names: those requesters' tickets
        # (ix_tickets_usuario_fecha) are ORed with the document's matches, each ticket's requester
        # tested first (a column of the row).
        documento = _ids_en_documento(palabras)
        por_solicitante = _por_solicitante(palabras)
        en_muestra, en_documento, _, _ = _lectura_pg(palabras, LIMITE_RANGO + 1)
        if por_solicitante and not en_documento:
            return or_(*por_solicitante)
        if not amplia:
            # Narrow: the matches first (GIN), then their rows by primary key; a plain IN could
            # walk the whole date index probing each ticket (seconds when the matches are old or few).
            return or_(Ticket.id == any_(func.array(documento.scalar_subquery())), *por_solicitante)
        # Broad: the list's order walked and stopped at the page, each ticket's document probed
        # when the words are dense (a page is a few dozen probes), else the document's matches
        # listed once (a rare word's 5,000 of a million: a probe per ticket walked would cost more).
        if en_muestra >= DENSIDAD_POR_FILA * MUESTRA:
            return or_(*por_solicitante, _documento_coincide(palabras))
        if not por_solicitante:
            return Ticket.id.in_(documento)  # a semi-join along the list's order
        return or_(*por_solicitante, (Ticket.id + 0).in_(documento))
    ids = _ids_que_coinciden(palabras)
    if not amplia:
        return Ticket.id.in_(ids)
    # SQLite, broad and dense ("impresora" is in 72 % of the tickets): the list's own index is
    # walked and each ticket tested by one seek of its words' terms; a page is a few dozen seeks.
    por_fila = consulta_por_fila(palabras)
    if por_fila is not None and not con_numero and _densa(por_fila):
        return exists(select(literal(1)).select_from(_fts).where(_match_texto(por_fila), _fts.c.rowid == Ticket.id))
    # Broad but sparse (a requester's 5,000 of a million), or a word that begins too many terms:
    # the matches listed once, the walk probing that list ("+ 0" keeps the primary key from
    # driving the join, looking up every match then sorting); a seek per ticket walked would
    # cost more than the list.
    return (Ticket.id + 0).in_(ids)


def _densa(por_fila: str) -> bool:
    """At least DENSIDAD_POR_FILA of the newest MUESTRA tickets match ``por_fila`` (SQLite; one
    count of the index's last rowids): the share of a walk that a page costs in seeks."""
    memo = g.setdefault("busqueda_densidad", {}) if has_app_context() else {}
    if por_fila not in memo:
        desde = select(func.max(Ticket.id)).scalar_subquery() - MUESTRA
        recientes = select(_fts.c.rowid).where(_match_texto(por_fila), _fts.c.rowid > desde).subquery()
        n = db.session.execute(select(func.count()).select_from(recientes)).scalar_one()
        memo[por_fila] = n >= DENSIDAD_POR_FILA * MUESTRA
    return memo[por_fila]


def condicion(q: str):
    """WHERE clause: the tickets ``q`` finds (by text, or by exact number). The caller adds
    the viewer's scope and the other filters."""
    condiciones = []
    palabras = terminos(q)
    numero = numero_exacto(q)
    if palabras:
        condiciones.append(_coinciden(palabras, con_numero=numero is not None))
    if numero:
        condiciones.append(Ticket.numero_ticket == numero)
    return condiciones or [false()]


def _coincidencias_hasta(palabras: list[str], tope: int) -> int:
    """How many tickets match, counting no further than ``tope`` (a cheap bounded count). On
    PostgreSQL the document's matches are counted first (_lectura_pg) and then, when requesters'
    names hold some words, those requesters' tickets: a UNION would hash every match of a broad
    part before its LIMIT."""
    if not _postgresql():
        return _contar_hasta(_ids_que_coinciden(palabras), tope)
    _, n, grupos, de_todas = _lectura_pg(palabras, tope)
    if n >= tope or not grupos:
        return n
    if de_todas >= tope or (n == 0 and set(grupos) == {frozenset(range(len(palabras)))}):
        return de_todas  # (a requester alone: their tickets, counted by the same statement)
    for parte in _partes_pg(palabras)[1:]:
        if (m := _contar_hasta(parte, tope)) >= tope:
            return m
    return _contar_hasta(_ids_que_coinciden(palabras), tope)


def _contar_hasta(ids, tope: int) -> int:
    return db.session.execute(_cuantos(ids, tope)).scalar_one()


def _cuantos(ids, tope: int):
    return select(func.count()).select_from(ids.limit(tope).subquery())


# The newest documents holding :q, each tested: the newest first by primary key, then the match
# (outside, where the GIN index cannot take it: the planner, which guesses a prefix's matches
# few, would gather every match first).
_RECIENTES = """(SELECT 1 FROM (SELECT documento FROM busqueda_tickets ORDER BY ticket_id DESC LIMIT {cuantos}) d
    WHERE d.documento @@ to_tsquery('mesa_busqueda'::regconfig, :q){limite})"""
# The requester's names are not in the document (migration 0025) but looked up in ``usuarios``
# by the text the document held, which ix_usuarios_busqueda indexes (written as there).
_VECTOR_SOLICITANTE = "to_tsvector('mesa_busqueda'::regconfig, (u.nombre || ' ') || u.username)"
_SQL_LECTURA = text(f"""
    WITH muestra AS (SELECT count(*) AS n FROM {_RECIENTES.format(cuantos=':muestra', limite='')} m),
    solicitantes AS (
      SELECT u.id, sum(1 << (p.i::int - 1)) AS palabras
      FROM usuarios u, unnest(CAST(:cada_una AS text[])) WITH ORDINALITY AS p(consulta, i)
      WHERE {_VECTOR_SOLICITANTE} @@ to_tsquery('mesa_busqueda'::regconfig, :alguna)
        AND {_VECTOR_SOLICITANTE} @@ to_tsquery('mesa_busqueda'::regconfig, p.consulta)
      GROUP BY u.id),
    conteo AS (SELECT n, CASE WHEN n >= :densa
      THEN (SELECT count(*) FROM {_RECIENTES.format(cuantos=':recientes', limite=' LIMIT :tope')} r)
      ELSE (SELECT count(*) FROM (SELECT 1 FROM busqueda_tickets
              WHERE documento @@ to_tsquery('mesa_busqueda'::regconfig, :q) LIMIT :tope) i) END AS en_documento
      FROM muestra)
    SELECT n, en_documento, (SELECT array_agg(id) FROM solicitantes), (SELECT array_agg(palabras) FROM solicitantes),
      CASE WHEN en_documento < :tope THEN (SELECT count(*) FROM (SELECT 1 FROM tickets WHERE usuario_id IN
        (SELECT id FROM solicitantes WHERE palabras = :todas) LIMIT :tope) t) END
    FROM conteo""").bindparams(
    # Written into the statement, not bound, as _tsquery: a read's statements stay prepared on
    # PostgreSQL (transacciones.py), and a generic plan would not see which words or limits it has.
    *(bindparam(nombre, type_=String, literal_execute=True) for nombre in ("q", "alguna")),
    bindparam("densa", type_=Float, literal_execute=True),
    *(bindparam(nombre, type_=Integer, literal_execute=True) for nombre in ("muestra", "tope", "todas", "recientes")))


def _lectura_pg(palabras: list[str], tope: int) -> tuple[int, int, dict[frozenset[int], list[int]], Optional[int]]:
    """PostgreSQL, in one statement remembered for the request: how many of the newest MUESTRA
    documents hold ``palabras``; how many documents do, counting no further than ``tope``; the
    users whose names match at least one word, grouped by the positions of the words they
    match; and, when the documents are fewer than ``tope``, how many tickets have a requester
    whose names hold every word (up to ``tope``). Dense words (at least DENSIDAD_POR_FILA of the
    sample) are counted among the newest documents, as many as hold ``tope`` matches at that
    density: the GIN index gathers every match before the LIMIT (75,000 for "impresora" at 100k, 10-17 ms), and the planner cannot
    tell which: it guesses a prefix's share from the index's statistics, which a vocabulary of
    a few words leaves without them (then 2 %, whatever the prefix)."""
    memo = g.setdefault("busqueda_lectura", {}) if has_app_context() else {}
    clave = (tuple(palabras), tope)
    if clave not in memo:
        densa = DENSIDAD_POR_FILA * MUESTRA
        en_muestra, n, usuarios, cuales, de_todas = db.session.execute(_SQL_LECTURA, {
            "q": consulta_tsquery(palabras), "muestra": MUESTRA, "densa": densa, "tope": tope,
            "todas": (1 << len(palabras)) - 1,
            "recientes": int(tope / max(DENSIDAD_POR_FILA, 1 / MUESTRA) * 1.25),
            "alguna": consulta_tsquery(palabras, "|"), "cada_una": [consulta_tsquery([p]) for p in palabras]}).one()
        if n < tope and en_muestra >= densa:  # dense lately, not before
            n = _contar_hasta(_ids_en_documento(palabras), tope)
        grupos: dict[frozenset[int], list[int]] = {}
        for usuario_id, bits in zip(usuarios or [], cuales or [], strict=True):
            grupos.setdefault(frozenset(i for i in range(len(palabras)) if int(bits) >> i & 1), []).append(usuario_id)
        memo[clave] = (en_muestra, n, grupos, de_todas)
    return memo[clave]


def ordenar_por_relevancia(stmt, q: str):
    """``stmt`` ordered best match first (an exact number before everything), when the search
    is narrow enough to rank (LIMITE_RANGO); otherwise unchanged. Later ORDER BY terms (the
    list's own order) only break ties."""
    palabras = terminos(q)
    numero = numero_exacto(q)
    if numero:
        stmt = stmt.order_by((Ticket.numero_ticket == numero).desc())
    if not palabras or _amplia(palabras):
        return stmt
    if _postgresql() and (grupos := _solicitantes(palabras)):
        if len(palabras) == 1 and not _lectura_pg(palabras, LIMITE_RANGO + 1)[1]:
            return stmt  # one word, in requesters' names only: every match ranks the same
        # The document's rank (at most LIMITE_RANGO tickets, one probe each), plus what a hit in
        # the requester's names weighed when they were in it: a lexeme of weight B, for the share
        # of the words they hold (title above requester, above description, as before 0025).
        documento = select(func.ts_rank(_pg.c.documento, _tsquery(palabras))).where(
            _pg.c.ticket_id == Ticket.id).scalar_subquery()
        solicitante = case(*((_de_solicitantes(usuarios), literal(RANGO_SOLICITANTE * len(cuales) / len(palabras)))
                             for cuales, usuarios in grupos.items()), else_=literal(0.0))
        return stmt.order_by((-(func.coalesce(documento, 0.0) + solicitante)).asc())
    if _postgresql():
        rango = select(_pg.c.ticket_id.label("ticket_id"),
                       (-func.ts_rank(_pg.c.documento, _tsquery(palabras))).label("rango")).where(
            _pg.c.documento.op("@@")(_tsquery(palabras)))
    else:
        rango = select(_fts.c.rowid.label("ticket_id"),
                       func.bm25(literal_column(TABLA_BUSQUEDA), *_PESOS_SQLITE).label("rango")).where(
            _match(palabras))
    rango = rango.subquery("busqueda_rango")
    return (stmt.outerjoin(rango, rango.c.ticket_id == Ticket.id)
            .order_by(rango.c.rango.asc().nulls_last()))


def paginar(stmt, page: int, per_page: int, q: Optional[str] = None, filtros=None, solo_q: bool = False):
    """One page of a search list (``stmt``: the tickets, filtered and ordered) and its total,
    counted no further than TOPE_TOTAL (or than this page, when it lies beyond): a
    ``paneles.Pagina`` whose ``exacto`` is False when more match, ``total`` then saying "more
    than this many". One statement gives the page's ids and the count, so the search is
    evaluated once; the items are the page's ticket ids (the caller reads the rows by primary key).

    A broad search by words (``q``; ``filtros`` is ``stmt`` without it) is counted apart
    instead (_hallados_aparte), and its page read alone. ``solo_q``: nothing but ``q`` narrows
    ``stmt`` (an admin's list, no other filter); a broad ``q`` (``_amplia``: more than
    LIMITE_RANGO match) is then "more than TOPE_TOTAL" without counting, its page read alone."""
    from paneles import Pagina  # paneles imports tickets, which imports this module

    desde = (page - 1) * per_page
    hasta = max(TOPE_TOTAL, desde + per_page)
    palabras = terminos(q)
    # q's words alone find more than LIMITE_RANGO tickets (a number or a phone in q only adds)
    sin_contar = solo_q and bool(palabras) and hasta < LIMITE_RANGO and _amplia(palabras)
    hallados = None if sin_contar else _hallados_aparte(q, filtros)
    if sin_contar or hallados is not None:
        ids_pagina = db.session.scalars(stmt.with_only_columns(Ticket.id).offset(desde).limit(per_page)).all()
        encontrados = hasta + 1 if sin_contar else db.session.execute(select(func.count()).select_from(
            hallados.limit(hasta + 1).subquery())).scalar_one()
    else:
        ids = db.session.scalars(stmt.with_only_columns(Ticket.id).limit(hasta + 1)).all()
        ids_pagina = ids[desde:desde + per_page]
        encontrados = len(ids)
    exacto = encontrados <= hasta
    return Pagina(list(ids_pagina), encontrados if exacto else hasta, page, per_page, total_exacto=exacto)


def _hallados_aparte(q: Optional[str], filtros):
    """The ids of the tickets of ``filtros`` that ``q``'s words find, driven by the FTS5 index
    (its order, each ticket probed by primary key), when ``q`` is a broad search by its words
    alone (not also a ticket number) on SQLite: the searches whose page walks the list's order
    testing each ticket (_coinciden), cheap for a page, not for a thousand. None otherwise."""
    palabras = terminos(q)
    # PostgreSQL: not there (yet). Counted apart, a requester's 5,000 of a million took 1.2 s
    # instead of 60 ms: the planner walks the date order for the page or the primary key for
    # the count, probing 200 tickets per match.
    if filtros is None or not palabras or numero_exacto(q) or _postgresql() or not _amplia(palabras):
        return None
    por_fila = consulta_por_fila(palabras)
    if por_fila is None:
        return None
    return filtros.with_only_columns(Ticket.id).order_by(None).join(_fts, _fts.c.rowid == Ticket.id).where(
        _match_texto(por_fila))


# --- snippets -----------------------------------------------------------------------------------

def resaltar(fragmento: Optional[str]) -> Optional[Markup]:
    """A snippet with its hits between ABRE/CIERRA as safe HTML: every piece of text is escaped,
    and the only markup is balanced <mark> elements. None when nothing is highlighted."""
    if not fragmento or ABRE not in fragmento:
        return None
    partes, abierto = [], False
    for trozo in re.split(f"([{ABRE}{CIERRA}])", fragmento):
        if trozo == ABRE:
            if not abierto:
                partes.append("<mark>")
            abierto = True
        elif trozo == CIERRA:
            if abierto:
                partes.append("</mark>")
            abierto = False
        else:
            partes.append(str(escape(trozo)))
    if abierto:
        partes.append("</mark>")
    return Markup("".join(partes))


# The title and number are on the row already: a snippet comes from the description, then the
# thread, then the requester (FTS5 column numbers).
_COLUMNAS_FRAGMENTO = (3, 4, 2)


def fragmentos(ids: list[int], q: Optional[str]) -> dict[int, Markup]:
    """The highlighted snippet of each ticket of ``ids`` (one page) where ``q`` matched outside
    the title: the description, the public thread or the requester."""
    palabras = terminos(q)
    if not ids or not palabras:
        return {}
    if _postgresql():
        hilo = (select(func.string_agg(Mensaje.cuerpo, aggregate_order_by(literal_column("' '"), Mensaje.id)))
                .where(Mensaje.ticket_id == Ticket.id).scalar_subquery())
        texto = func.concat_ws(" · ", Ticket.descripcion, hilo, Usuario.nombre, Cliente.nombre)
        opciones = (f'StartSel="{ABRE}", StopSel="{CIERRA}", MaxWords=24, MinWords=10, '
                    'MaxFragments=2, FragmentDelimiter=" … "')
        stmt = (select(Ticket.id, func.ts_headline(_CONFIG_PG, texto, _tsquery(palabras), literal(opciones)))
                .outerjoin(Usuario, Usuario.id == Ticket.usuario_id)
                .outerjoin(Cliente, Cliente.id == Ticket.cliente_id)
                .where(Ticket.id.in_(ids)))
    else:
        stmt = select(_fts.c.rowid, *(func.snippet(literal_column(TABLA_BUSQUEDA), columna, ABRE, CIERRA, "…", 16)
                                      for columna in _COLUMNAS_FRAGMENTO))
        por_fila = _consulta_fragmentos(palabras)
        if por_fila is not None:  # FTS5 runs the MATCH once per id of the IN: a seek each
            stmt = stmt.where(_match_texto(por_fila), _fts.c.rowid.in_(ids))
        else:
            # One range for FTS5 and the ids checked by SQLite ("+ 0"): per id of an IN, FTS5
            # would merge a prefix's doclists each time (seconds for a broad word).
            stmt = stmt.where(_match(palabras), _fts.c.rowid.between(min(ids), max(ids)), (_fts.c.rowid + 0).in_(ids))
    salida = {}
    for ticket_id, *candidatos in db.session.execute(stmt):
        marcado = next((m for m in map(resaltar, candidatos) if m is not None), None)
        if marcado is not None:
            salida[ticket_id] = marcado
    return salida
