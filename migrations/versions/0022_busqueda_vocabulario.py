"""busqueda: the SQLite index's vocabulary as a table (fts5vocab), to spell a prefix as its terms

A broad search tests each ticket of the list's order against the words (busqueda.py). FTS5 merges
the doclists of every term a prefix covers each time a MATCH starts, so a prefix tested ticket by
ticket is merged once per ticket; the same words spelled as their indexed terms ("impre" →
"impresora") are seeked instead. An ``instance`` vocabulary table finds the first term at or
after a string by seeking (a ``row`` one counts each term's documents first). PostgreSQL has no
such table and needs none.

Revision ID: 0022
Revises: 0021
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade():
    conn = op.get_bind()
    if conn.dialect.name == 'sqlite':
        conn.exec_driver_sql("CREATE VIRTUAL TABLE busqueda_tickets_vocab "
                             "USING fts5vocab(busqueda_tickets, instance)")


def downgrade():
    conn = op.get_bind()
    if conn.dialect.name == 'sqlite':
        conn.exec_driver_sql("DROP TABLE busqueda_tickets_vocab")
