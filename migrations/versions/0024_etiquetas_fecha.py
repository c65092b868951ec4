"""A tag's list at a million tickets: each tag link carries its ticket's fecha_creacion (issue 13)

``ticket_etiquetas.fecha_creacion``, copied from the ticket here and then kept by the ORM (the
link is written with it; a ticket's new date is carried to its links), and the index
``(etiqueta_id, fecha_creacion, ticket_id)`` replacing ``(etiqueta_id, ticket_id)``: page 50 of a
tag's list newest first is then one range of that index, where PostgreSQL walked the tickets'
date order probing each ticket's links (20,000 probes at a million). The new index still gives a
tag's ids and count from the index alone, as the old one did.

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30 08:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("ticket_etiquetas", sa.Column("fecha_creacion", sa.DateTime(), nullable=True))
    op.execute("UPDATE ticket_etiquetas SET fecha_creacion = "
               "(SELECT tickets.fecha_creacion FROM tickets WHERE tickets.id = ticket_etiquetas.ticket_id)")
    with op.batch_alter_table("ticket_etiquetas") as batch_op:
        batch_op.alter_column("fecha_creacion", existing_type=sa.DateTime(), nullable=False)
    op.create_index("ix_ticket_etiquetas_etiqueta_fecha", "ticket_etiquetas",
                    ["etiqueta_id", "fecha_creacion", "ticket_id"])
    op.drop_index("ix_ticket_etiquetas_etiqueta_ticket", table_name="ticket_etiquetas")


def downgrade():
    op.create_index("ix_ticket_etiquetas_etiqueta_ticket", "ticket_etiquetas", ["etiqueta_id", "ticket_id"])
    op.drop_index("ix_ticket_etiquetas_etiqueta_fecha", table_name="ticket_etiquetas")
    with op.batch_alter_table("ticket_etiquetas") as batch_op:
        batch_op.drop_column("fecha_creacion")
