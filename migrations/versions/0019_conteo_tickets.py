"""Lists at a million tickets: joint counts, a tag's tickets and the priority rank by index (issue 13)

``conteo_tickets``: a few hundred rows kept by the ``acumulados`` session listener beside
``estadisticas_marginales``, filled here from the existing tickets. An admin's list filtered on
those columns only sums them instead of counting up to a million tickets.
``ticket_etiquetas (etiqueta_id, ticket_id)`` replaces the index on etiqueta_id alone: a tag's
tickets (the tag filter's ids and count) then come from the index without reading the table.
``ix_tickets_prioridad_rango``: the rank of the priority (a copy of models.RANGO_PRIORIDAD_SQL as
of this revision) and the id, so that orden=prioridad reads its page from the index instead of
sorting.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 05:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

RANGO_PRIORIDAD = ("(CASE WHEN prioridad = 'baja' THEN 1 WHEN prioridad = 'media' THEN 2 "
                   "WHEN prioridad = 'alta' THEN 3 WHEN prioridad = 'critica' THEN 4 END)")


def upgrade():
    op.create_table(
        'conteo_tickets',
        sa.Column('estado', sa.String(length=15), nullable=False),
        sa.Column('prioridad', sa.String(length=10), nullable=False),
        sa.Column('categoria_id', sa.Integer(), nullable=False),
        sa.Column('ingeniero', sa.Integer(), nullable=False),
        sa.Column('tickets', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('estado', 'prioridad', 'categoria_id', 'ingeniero', name=op.f('pk_conteo_tickets')),
    )
    op.execute("INSERT INTO conteo_tickets (estado, prioridad, categoria_id, ingeniero, tickets) "
               "SELECT estado, prioridad, categoria_id, COALESCE(ingeniero_id, 0), COUNT(*) FROM tickets "
               "GROUP BY estado, prioridad, categoria_id, COALESCE(ingeniero_id, 0)")
    op.create_index("ix_ticket_etiquetas_etiqueta_ticket", "ticket_etiquetas", ["etiqueta_id", "ticket_id"])
    op.drop_index("ix_ticket_etiquetas_etiqueta_id", table_name="ticket_etiquetas")
    op.create_index("ix_tickets_prioridad_rango", "tickets", [sa.text(RANGO_PRIORIDAD), "id"])


def downgrade():
    op.drop_index("ix_tickets_prioridad_rango", table_name="tickets")
    op.create_index("ix_ticket_etiquetas_etiqueta_id", "ticket_etiquetas", ["etiqueta_id"])
    op.drop_index("ix_ticket_etiquetas_etiqueta_ticket", table_name="ticket_etiquetas")
    op.drop_table('conteo_tickets')
