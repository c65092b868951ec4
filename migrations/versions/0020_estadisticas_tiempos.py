"""Statistics rollup: response/resolution times and pending SLA clocks; duration indexes (issue 13)

``estadisticas_marginales`` gains the tickets answered and resolved with the sum of their
wall-clock durations (the mean of every ticket, exact) and the tickets whose SLA clock runs towards
a due time (past due now = these minus the few not due yet), and a tag per local day replaced when
the SLA times of its tickets change (the key of the cached period percentiles); rebuilt here from
the tickets.
Two partial indexes on the duration expression itself (``acumulados.duracion``, in each backend's
dialect, so owned by this migration and not declared on the model): the median of every ticket is
one ORDER BY/OFFSET probe walking the index, no ticket read.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 05:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

COLUMNAS = {'pendientes': sa.Integer(), 'respondidos': sa.Integer(), 'respuesta_us': sa.BigInteger(),
            'resueltos': sa.Integer(), 'resolucion_us': sa.BigInteger(), 'etiqueta_sla': sa.BigInteger()}
# A copy of acumulados.duracion as of this revision (a migration must not follow later code).
# PostgreSQL cannot read an expression's value back from its index, so the index also carries the
# two columns: the probe is then an index-only scan (8 ms instead of 32 at 100,000 tickets).
DURACION = {
    "postgresql": "((EXTRACT(epoch FROM {fin} - fecha_creacion))) INCLUDE ({fin}, fecha_creacion)",
    "sqlite": "(round((julianday({fin}) - julianday(fecha_creacion)) * 86400))",
}
INDICES = {"ix_tickets_duracion_primera_respuesta": "fecha_primera_respuesta",
           "ix_tickets_duracion_resolucion": "fecha_resolucion"}


def upgrade():
    with op.batch_alter_table('estadisticas_marginales') as batch_op:
        for nombre, tipo in COLUMNAS.items():
            batch_op.add_column(sa.Column(nombre, tipo, nullable=False, server_default='0'))
    with op.batch_alter_table('estadisticas_marginales') as batch_op:
        for nombre in COLUMNAS:
            batch_op.alter_column(nombre, server_default=None)
    dialecto = op.get_bind().dialect.name
    for nombre, fin in INDICES.items():
        op.execute(f"CREATE INDEX {nombre} ON tickets {DURACION[dialecto].format(fin=fin)} WHERE {fin} IS NOT NULL")
    import acumulados

    acumulados.reconstruir(op.get_bind())


def downgrade():
    for nombre in INDICES:
        op.drop_index(nombre, table_name="tickets")
    with op.batch_alter_table('estadisticas_marginales') as batch_op:
        for nombre in COLUMNAS:
            batch_op.drop_column(nombre)
