"""busqueda: on PostgreSQL the requester's names leave the search document for a lookup of users

Every ticket's document repeated its requester's name and username, so a search for a requester
(``user137``: 5,000 tickets at a million) read 5,000 documents from the GIN index, and as a broad
search walked the date order probing a document per ticket (200 per match). Now the document
holds número, título, the client's name, descripción and the thread; the search looks the words
up in ``usuarios`` (a GIN index on the same text the document held, ``nombre || ' ' || username``)
and reaches those users' tickets through ``ix_tickets_usuario_fecha`` (busqueda.py). A user's
rename no longer rewrites their tickets' documents: the trigger on ``usuarios`` goes.

SQLite keeps its FTS5 document as it is (its plans meet the targets with it).

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30 10:50:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

# The requester's text, exactly as the document held it (0014) and busqueda.py looks it up.
INDICE_USUARIOS = ("CREATE INDEX ix_usuarios_busqueda ON usuarios "
                   "USING gin (to_tsvector('mesa_busqueda'::regconfig, nombre || ' ' || username))")


def _documento(con_usuario: bool) -> str:
    solicitante = "coalesce(u.nombre || ' ' || u.username, '') || ' ' || " if con_usuario else ""
    return f"""
    setweight(to_tsvector('mesa_busqueda', coalesce(t.numero_ticket, '') || ' ' || t.titulo), 'A')
 || setweight(to_tsvector('mesa_busqueda', {solicitante}coalesce(c.nombre, '')), 'B')
 || setweight(to_tsvector('mesa_busqueda', t.descripcion), 'C')
 || setweight(to_tsvector('mesa_busqueda', coalesce((SELECT string_agg(m.cuerpo, ' ' ORDER BY m.id)
                                                     FROM mensajes m WHERE m.ticket_id = t.id), '')), 'D')"""


def _reindexar(con_usuario: bool) -> str:
    union = "LEFT JOIN usuarios u ON u.id = t.usuario_id " if con_usuario else ""
    return f"""
CREATE OR REPLACE FUNCTION busqueda_reindexar(ids integer[]) RETURNS void LANGUAGE sql AS $$
  INSERT INTO busqueda_tickets (ticket_id, documento)
  SELECT t.id, {_documento(con_usuario)}
  FROM tickets t {union}LEFT JOIN clientes c ON c.id = t.cliente_id
  WHERE t.id = ANY(ids)
  ON CONFLICT (ticket_id) DO UPDATE SET documento = EXCLUDED.documento
$$"""


_TRIGGER_USUARIOS = """
CREATE FUNCTION busqueda_usuario_cambiado() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM busqueda_reindexar(ARRAY(SELECT id FROM tickets WHERE usuario_id = NEW.id));
  RETURN NULL;
END $$;
CREATE TRIGGER busqueda_usuarios_au AFTER UPDATE OF nombre, username ON usuarios
  FOR EACH ROW EXECUTE FUNCTION busqueda_usuario_cambiado();
"""


def _en_postgresql(*sentencias: str) -> None:
    """Run ``sentencias`` in order; nothing on SQLite, whose FTS5 document keeps the names."""
    conn = op.get_bind()
    if conn.dialect.name == 'postgresql':
        for sentencia in sentencias:
            conn.exec_driver_sql(sentencia)


def upgrade():
    _en_postgresql(
        "DROP TRIGGER IF EXISTS busqueda_usuarios_au ON usuarios",
        "DROP FUNCTION IF EXISTS busqueda_usuario_cambiado()",
        _reindexar(con_usuario=False),
        "SELECT busqueda_reindexar(ARRAY(SELECT id FROM tickets))",
        INDICE_USUARIOS)


def downgrade():
    _en_postgresql(
        "DROP INDEX IF EXISTS ix_usuarios_busqueda",
        _reindexar(con_usuario=True),
        "SELECT busqueda_reindexar(ARRAY(SELECT id FROM tickets))",
        _TRIGGER_USUARIOS)
