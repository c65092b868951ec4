"""Lists at a million tickets on PostgreSQL: the estado+prioridad index carries the id (issue 13)

``ix_tickets_estado_prioridad_fecha_id (estado, prioridad, fecha_creacion, id)`` replaces
``ix_tickets_estado_prioridad_fecha``: a filtered list's order is fecha_creacion then id, and
PostgreSQL reads a deep OFFSET page's keys from the index alone only when the id is in it, as
migration 0021 did for the unfiltered list. SQLite already had the id as the rowid.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30 07:05:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_tickets_estado_prioridad_fecha_id", "tickets", ["estado", "prioridad", "fecha_creacion", "id"])
    op.drop_index("ix_tickets_estado_prioridad_fecha", table_name="tickets")


def downgrade():
    op.create_index("ix_tickets_estado_prioridad_fecha", "tickets", ["estado", "prioridad", "fecha_creacion"])
    op.drop_index("ix_tickets_estado_prioridad_fecha_id", table_name="tickets")
