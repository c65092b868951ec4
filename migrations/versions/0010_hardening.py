"""hardening: ticket version (optimistic concurrency), session version, token expiry

Revision ID: 0010
Revises: 0005
"""
from alembic import op

import models
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('usuarios', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sesion_version', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expira_en', models.UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expira_en')
    with op.batch_alter_table('usuarios', schema=None) as batch_op:
        batch_op.drop_column('sesion_version')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('version')
