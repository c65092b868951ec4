"""Per-user email preferences and the live stream's scope indexes (issue 12)

``preferencias_email``: one row per (user, notification kind) the user changed; no row = on.
Two indexes let the live event stream ask "what changed in the tickets I may see" in O(log n):
(ingeniero_id, fecha_actualizacion) for an engineer, (usuario_id, fecha_actualizacion) for a
requester (an admin's scope uses ix_tickets_fecha_actualizacion).

Revision ID: 0013
Revises: 0009
Create Date: 2026-11-24 10:00:00

"""
from alembic import op

import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('preferencias_email',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('usuario_id', sa.Integer(), nullable=False),
    sa.Column('clave', sa.String(length=30), nullable=False),
    sa.Column('email', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['usuario_id'], ['usuarios.id'], name=op.f('fk_preferencias_email_usuario_id_usuarios'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_preferencias_email')),
    sa.UniqueConstraint('usuario_id', 'clave', name='uq_preferencias_email_usuario_clave')
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_ingeniero_actualizacion', ['ingeniero_id', 'fecha_actualizacion'], unique=False)
        batch_op.create_index('ix_tickets_usuario_actualizacion', ['usuario_id', 'fecha_actualizacion'], unique=False)


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_usuario_actualizacion')
        batch_op.drop_index('ix_tickets_ingeniero_actualizacion')
    op.drop_table('preferencias_email')
