"""Overdue tickets counted by an index: estado + the effective due time (issue 13)

``ix_tickets_estado_vence`` is on ``estado`` and the expression ``models.VENCE_EFECTIVO`` (the
first-response due time while nobody answered, if it comes first, else the resolution one), so
the panels' overdue counter (``sla.vencido_clause``) is a range count per running estado instead
of a scan of every ticket.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 05:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# A copy of models.VENCE_EFECTIVO as of this revision (a migration must not follow later models).
VENCE_EFECTIVO = sa.text(
    "(CASE WHEN (fecha_primera_respuesta IS NULL AND (sla_resolucion_vence IS NULL "
    "OR sla_primera_respuesta_vence < sla_resolucion_vence)) "
    "THEN sla_primera_respuesta_vence ELSE sla_resolucion_vence END)")


def upgrade():
    op.create_index("ix_tickets_estado_vence", "tickets", ["estado", VENCE_EFECTIVO], unique=False)


def downgrade():
    op.drop_index("ix_tickets_estado_vence", table_name="tickets")
