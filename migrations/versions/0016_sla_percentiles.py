"""Statistics rollup and partial indexes of the stored SLA outcome (issue 13)

``estadisticas_marginales``: ticket counts per value of each dimension, kept by the
``acumulados`` session listener and filled from the existing tickets by 0017a.
One index per outcome (first response, resolution) alone and after each grouping column
(ingeniero, prioridad, categoría), only over the rows where the outcome is stored: the k-th value
of a group is then one ORDER BY/OFFSET probe (sla._agregados) and creating a ticket writes none;
likewise the closing date for the statistics' daily series of closed tickets.

Revision ID: 0016
Revises: 0011
Create Date: 2026-11-30 02:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0011'
branch_labels = None
depends_on = None

# A copy of models.INDICES_SLA as of this revision (a migration must not follow later models).
INDICES = {
    f"{prefijo}_{clave}": (*grupo, f"sla_{metrica}_segundos")
    for metrica, prefijo in (("primera_respuesta", "sla1"), ("resolucion", "sla2"))
    for clave, grupo in (("total", ()), ("ingeniero", ("ingeniero_id",)), ("prioridad", ("prioridad",)),
                         ("categoria", ("categoria_id",)), ("fecha", ("fecha_creacion",)))
}


def upgrade():
    op.create_table(
        'estadisticas_marginales',
        sa.Column('dimension', sa.String(length=12), nullable=False),
        sa.Column('clave', sa.String(length=40), nullable=False),
        *(sa.Column(c, sa.Integer(), nullable=False) for c in (
            'tickets', 'abiertos', 'primera_n', 'primera_ok', 'resolucion_n', 'resolucion_ok', 'fallidos')),
        sa.PrimaryKeyConstraint('dimension', 'clave', name=op.f('pk_estadisticas_marginales')),
    )
    for nombre, columnas in INDICES.items():
        condicion = sa.text(f"{columnas[-1]} IS NOT NULL")
        op.create_index(f"ix_tickets_{nombre}", "tickets", list(columnas), unique=False,
                        sqlite_where=condicion, postgresql_where=condicion)
    cerrados = sa.text("fecha_cierre IS NOT NULL")
    op.create_index("ix_tickets_fecha_cierre", "tickets", ["fecha_cierre"], unique=False,
                    sqlite_where=cerrados, postgresql_where=cerrados)
    # Filled from the tickets by 0017a, once the rollup has all its columns (acumulados.reconstruir
    # writes the current model's).


def downgrade():
    op.drop_table('estadisticas_marginales')
    op.drop_index("ix_tickets_fecha_cierre", table_name="tickets")
    for nombre in INDICES:
        op.drop_index(f"ix_tickets_{nombre}", table_name="tickets")
