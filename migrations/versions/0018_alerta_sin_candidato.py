"""Index of SLA alerts by kind and date: the "nobody to assign" alert goes out once per period (issue 13)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 05:30:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('alertas_sla', schema=None) as batch_op:
        batch_op.create_index('ix_alertas_sla_tipo_fecha', ['tipo', 'fecha'], unique=False)


def downgrade():
    with op.batch_alter_table('alertas_sla', schema=None) as batch_op:
        batch_op.drop_index('ix_alertas_sla_tipo_fecha')
