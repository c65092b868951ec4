"""Lists at a million tickets on PostgreSQL: the default order's index carries the id (issue 13)

``ix_tickets_fecha_id (fecha_creacion, id)`` replaces ``ix_tickets_fecha_creacion``: the list's
order is fecha_creacion then id, and PostgreSQL reads a deep page's ids (or a tag's, probed
along that order) from the index alone only when the id is in it. SQLite already had it as the
rowid.

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30 06:10:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_tickets_fecha_id", "tickets", ["fecha_creacion", "id"])
    op.drop_index("ix_tickets_fecha_creacion", table_name="tickets")


def downgrade():
    op.create_index("ix_tickets_fecha_creacion", "tickets", ["fecha_creacion"])
    op.drop_index("ix_tickets_fecha_id", table_name="tickets")
