"""busqueda: full-text index of the tickets (SQLite FTS5, PostgreSQL tsvector + GIN), kept by triggers

One search document per ticket: número, título, requester (user name and username, client name),
descripción and the public thread (``mensajes``). Internal notes are NOT indexed, so searching
can never reveal them (tickets.ve_notas stays the only visibility rule).

Kept in sync by triggers in the database, in the same transaction as the write, whoever writes
(ORM, Core bulk inserts, raw SQL): insert/update of the indexed ticket columns, insert/update/
delete of a message, a requester's or client's name change. Deleting a ticket deletes its row.

SQLite: an FTS5 table ``busqueda_tickets`` (rowid = tickets.id, ``unicode61 remove_diacritics 2``,
prefix indexes of 2 and 3 characters). PostgreSQL: a table ``busqueda_tickets(ticket_id,
documento tsvector)`` with a GIN index, in the text search configuration ``mesa_busqueda``: a
copy of ``simple`` (no stemming, no stop words) with ``unaccent`` before it, so accents and case
never matter. Without the unaccent extension (it ships with PostgreSQL's contrib, which Debian's
``postgresql`` package includes) the configuration is plain ``simple`` and accents matter.

NOTE for later migrations: on SQLite, ``batch_alter_table`` on tickets, mensajes, usuarios or
clientes recreates the table and drops its triggers; re-run ``crear_triggers_sqlite`` of this
file afterwards (tests/test_busqueda.py checks the triggers exist at head).

Revision ID: 0014
Revises: 0009
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None

# --- SQLite -----------------------------------------------------------------------------------

# The requester of ticket X, and its public thread (oldest first), as text.
_SOLICITANTE = ("(SELECT coalesce(su.nombre || ' ' || su.username, '') || ' ' || coalesce(sc.nombre, '') "
                "FROM tickets st LEFT JOIN usuarios su ON su.id = st.usuario_id "
                "LEFT JOIN clientes sc ON sc.id = st.cliente_id WHERE st.id = {x})")
_HILO = ("coalesce((SELECT group_concat(cuerpo, ' ') FROM "
         "(SELECT cuerpo FROM mensajes WHERE ticket_id = {x} ORDER BY id)), '')")

SQLITE_TRIGGERS = {
    "busqueda_tickets_ai": f"""
        CREATE TRIGGER busqueda_tickets_ai AFTER INSERT ON tickets BEGIN
          INSERT INTO busqueda_tickets (rowid, numero, titulo, solicitante, descripcion, hilo)
          VALUES (new.id, new.numero_ticket, new.titulo, {_SOLICITANTE.format(x='new.id')}, new.descripcion,
                  {_HILO.format(x='new.id')});
        END""",
    "busqueda_tickets_au": f"""
        CREATE TRIGGER busqueda_tickets_au
        AFTER UPDATE OF numero_ticket, titulo, descripcion, usuario_id, cliente_id ON tickets BEGIN
          UPDATE busqueda_tickets SET numero = new.numero_ticket, titulo = new.titulo,
                 solicitante = {_SOLICITANTE.format(x='new.id')}, descripcion = new.descripcion
          WHERE rowid = new.id;
        END""",
    "busqueda_tickets_ad": """
        CREATE TRIGGER busqueda_tickets_ad AFTER DELETE ON tickets BEGIN
          DELETE FROM busqueda_tickets WHERE rowid = old.id;
        END""",
    "busqueda_mensajes_ai": f"""
        CREATE TRIGGER busqueda_mensajes_ai AFTER INSERT ON mensajes BEGIN
          UPDATE busqueda_tickets SET hilo = {_HILO.format(x='new.ticket_id')} WHERE rowid = new.ticket_id;
        END""",
    "busqueda_mensajes_au": f"""
        CREATE TRIGGER busqueda_mensajes_au AFTER UPDATE OF cuerpo, ticket_id ON mensajes BEGIN
          UPDATE busqueda_tickets SET hilo = {_HILO.format(x='old.ticket_id')} WHERE rowid = old.ticket_id;
          UPDATE busqueda_tickets SET hilo = {_HILO.format(x='new.ticket_id')} WHERE rowid = new.ticket_id;
        END""",
    "busqueda_mensajes_ad": f"""
        CREATE TRIGGER busqueda_mensajes_ad AFTER DELETE ON mensajes BEGIN
          UPDATE busqueda_tickets SET hilo = {_HILO.format(x='old.ticket_id')} WHERE rowid = old.ticket_id;
        END""",
    "busqueda_usuarios_au": f"""
        CREATE TRIGGER busqueda_usuarios_au AFTER UPDATE OF nombre, username ON usuarios BEGIN
          UPDATE busqueda_tickets SET solicitante = {_SOLICITANTE.format(x='busqueda_tickets.rowid')}
          WHERE rowid IN (SELECT id FROM tickets WHERE usuario_id = new.id);
        END""",
    "busqueda_clientes_au": f"""
        CREATE TRIGGER busqueda_clientes_au AFTER UPDATE OF nombre ON clientes BEGIN
          UPDATE busqueda_tickets SET solicitante = {_SOLICITANTE.format(x='busqueda_tickets.rowid')}
          WHERE rowid IN (SELECT id FROM tickets WHERE cliente_id = new.id);
        END""",
}


def crear_triggers_sqlite(execute) -> None:
    for nombre, ddl in SQLITE_TRIGGERS.items():
        execute(f"DROP TRIGGER IF EXISTS {nombre}")
        execute(ddl)


def _upgrade_sqlite(execute) -> None:
    execute("""CREATE VIRTUAL TABLE busqueda_tickets USING fts5(
                 numero, titulo, solicitante, descripcion, hilo,
                 tokenize = "unicode61 remove_diacritics 2", prefix = '2 3')""")
    execute(f"""INSERT INTO busqueda_tickets (rowid, numero, titulo, solicitante, descripcion, hilo)
                SELECT t.id, t.numero_ticket, t.titulo, {_SOLICITANTE.format(x='t.id')}, t.descripcion,
                       {_HILO.format(x='t.id')}
                FROM tickets t""")
    crear_triggers_sqlite(execute)


# --- PostgreSQL -------------------------------------------------------------------------------

# The document of ticket ``t`` (joined to its requester ``u`` and client ``c``): weights rank a
# hit in the number or title above one in the requester, above the description, above the thread.
_DOCUMENTO_PG = """
    setweight(to_tsvector('mesa_busqueda', coalesce(t.numero_ticket, '') || ' ' || t.titulo), 'A')
 || setweight(to_tsvector('mesa_busqueda', coalesce(u.nombre || ' ' || u.username, '') || ' '
                                           || coalesce(c.nombre, '')), 'B')
 || setweight(to_tsvector('mesa_busqueda', t.descripcion), 'C')
 || setweight(to_tsvector('mesa_busqueda', coalesce((SELECT string_agg(m.cuerpo, ' ' ORDER BY m.id)
                                                     FROM mensajes m WHERE m.ticket_id = t.id), '')), 'D')"""

PG_FUNCIONES = f"""
CREATE FUNCTION busqueda_reindexar(ids integer[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO busqueda_tickets (ticket_id, documento)
  SELECT t.id, {_DOCUMENTO_PG}
  FROM tickets t LEFT JOIN usuarios u ON u.id = t.usuario_id LEFT JOIN clientes c ON c.id = t.cliente_id
  WHERE t.id = ANY(ids)
  ON CONFLICT (ticket_id) DO UPDATE SET documento = EXCLUDED.documento
$$;

CREATE FUNCTION busqueda_tickets_insertados() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM busqueda_reindexar(ARRAY(SELECT id FROM nuevos));
  RETURN NULL;
END $$;

CREATE FUNCTION busqueda_ticket_cambiado() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM busqueda_reindexar(ARRAY[NEW.id]);
  RETURN NULL;
END $$;

CREATE FUNCTION busqueda_mensajes_insertados() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM busqueda_reindexar(ARRAY(SELECT DISTINCT ticket_id FROM nuevos));
  RETURN NULL;
END $$;

CREATE FUNCTION busqueda_mensajes_borrados() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM busqueda_reindexar(ARRAY(SELECT DISTINCT ticket_id FROM viejos));
  RETURN NULL;
END $$;

CREATE FUNCTION busqueda_mensaje_cambiado() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM busqueda_reindexar(ARRAY[OLD.ticket_id, NEW.ticket_id]);
  RETURN NULL;
END $$;

CREATE FUNCTION busqueda_usuario_cambiado() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM busqueda_reindexar(ARRAY(SELECT id FROM tickets WHERE usuario_id = NEW.id));
  RETURN NULL;
END $$;

CREATE FUNCTION busqueda_cliente_cambiado() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM busqueda_reindexar(ARRAY(SELECT id FROM tickets WHERE cliente_id = NEW.id));
  RETURN NULL;
END $$;

-- Bulk inserts are indexed per statement (transition tables), edits per row and only when an
-- indexed column is in the UPDATE: estado changes and read receipts do not touch the index.
CREATE TRIGGER busqueda_tickets_ai AFTER INSERT ON tickets REFERENCING NEW TABLE AS nuevos
  FOR EACH STATEMENT EXECUTE FUNCTION busqueda_tickets_insertados();
CREATE TRIGGER busqueda_tickets_au AFTER UPDATE OF numero_ticket, titulo, descripcion, usuario_id, cliente_id
  ON tickets FOR EACH ROW EXECUTE FUNCTION busqueda_ticket_cambiado();
CREATE TRIGGER busqueda_mensajes_ai AFTER INSERT ON mensajes REFERENCING NEW TABLE AS nuevos
  FOR EACH STATEMENT EXECUTE FUNCTION busqueda_mensajes_insertados();
CREATE TRIGGER busqueda_mensajes_ad AFTER DELETE ON mensajes REFERENCING OLD TABLE AS viejos
  FOR EACH STATEMENT EXECUTE FUNCTION busqueda_mensajes_borrados();
CREATE TRIGGER busqueda_mensajes_au AFTER UPDATE OF cuerpo, ticket_id ON mensajes
  FOR EACH ROW EXECUTE FUNCTION busqueda_mensaje_cambiado();
CREATE TRIGGER busqueda_usuarios_au AFTER UPDATE OF nombre, username ON usuarios
  FOR EACH ROW EXECUTE FUNCTION busqueda_usuario_cambiado();
CREATE TRIGGER busqueda_clientes_au AFTER UPDATE OF nombre ON clientes
  FOR EACH ROW EXECUTE FUNCTION busqueda_cliente_cambiado();
"""

PG_FUNCIONES_BORRAR = ("busqueda_reindexar(integer[])", "busqueda_tickets_insertados()",
                       "busqueda_ticket_cambiado()", "busqueda_mensajes_insertados()",
                       "busqueda_mensajes_borrados()", "busqueda_mensaje_cambiado()",
                       "busqueda_usuario_cambiado()", "busqueda_cliente_cambiado()")


def _upgrade_postgresql(conn, execute) -> None:
    con_unaccent = True
    try:
        with conn.begin_nested():  # a refused CREATE EXTENSION must not abort the migration
            execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    except Exception:  # noqa: BLE001 - not installed or not allowed: fall back to plain simple
        con_unaccent = False
    execute("CREATE TEXT SEARCH CONFIGURATION mesa_busqueda (COPY = simple)")
    if con_unaccent:
        execute("ALTER TEXT SEARCH CONFIGURATION mesa_busqueda "
                "ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part "
                "WITH unaccent, simple")
    execute("""CREATE TABLE busqueda_tickets (
                 ticket_id integer PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
                 documento tsvector NOT NULL)""")
    execute(f"""INSERT INTO busqueda_tickets (ticket_id, documento)
                SELECT t.id, {_DOCUMENTO_PG}
                FROM tickets t LEFT JOIN usuarios u ON u.id = t.usuario_id
                LEFT JOIN clientes c ON c.id = t.cliente_id""")
    execute("CREATE INDEX ix_busqueda_tickets_documento ON busqueda_tickets USING gin (documento)")
    execute(PG_FUNCIONES)


def upgrade():
    conn = op.get_bind()
    execute = conn.exec_driver_sql
    if conn.dialect.name == 'postgresql':
        _upgrade_postgresql(conn, execute)
    else:
        _upgrade_sqlite(execute)


def downgrade():
    conn = op.get_bind()
    execute = conn.exec_driver_sql
    if conn.dialect.name == 'postgresql':
        for trigger, tabla in (("busqueda_tickets_ai", "tickets"), ("busqueda_tickets_au", "tickets"),
                               ("busqueda_mensajes_ai", "mensajes"), ("busqueda_mensajes_ad", "mensajes"),
                               ("busqueda_mensajes_au", "mensajes"), ("busqueda_usuarios_au", "usuarios"),
                               ("busqueda_clientes_au", "clientes")):
            execute(f"DROP TRIGGER IF EXISTS {trigger} ON {tabla}")
        for funcion in PG_FUNCIONES_BORRAR:
            execute(f"DROP FUNCTION IF EXISTS {funcion}")
        execute("DROP TABLE IF EXISTS busqueda_tickets")
        execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS mesa_busqueda")
    else:
        for nombre in SQLITE_TRIGGERS:
            execute(f"DROP TRIGGER IF EXISTS {nombre}")
        execute("DROP TABLE IF EXISTS busqueda_tickets")
