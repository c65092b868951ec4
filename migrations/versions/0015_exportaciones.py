"""Excel exports as background jobs with progress (issue 13)

Revision ID: 0015
Revises: 0009
Create Date: 2026-11-30 12:00:00.000000

"""
from alembic import op

import models
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('exportaciones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('usuario_id', sa.Integer(), nullable=False),
    sa.Column('tipo', sa.String(length=10), nullable=False),
    sa.Column('filtros', sa.JSON(), nullable=False),
    sa.Column('estado', sa.String(length=10), nullable=False),
    sa.Column('filas_escritas', sa.Integer(), nullable=False),
    sa.Column('filas_total', sa.Integer(), nullable=True),
    sa.Column('archivo', sa.String(length=500), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('intentos', sa.Integer(), nullable=False),
    sa.Column('reclamado_por', sa.String(length=80), nullable=True),
    sa.Column('latido', models.UTCDateTime(), nullable=True),
    sa.Column('fecha_creacion', models.UTCDateTime(), nullable=False),
    sa.Column('fecha_inicio', models.UTCDateTime(), nullable=True),
    sa.Column('fecha_fin', models.UTCDateTime(), nullable=True),
    sa.Column('expira_en', models.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['usuario_id'], ['usuarios.id'], name=op.f('fk_exportaciones_usuario_id_usuarios'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exportaciones'))
    )
    with op.batch_alter_table('exportaciones', schema=None) as batch_op:
        batch_op.create_index('ix_exportaciones_estado_id', ['estado', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exportaciones_usuario_id'), ['usuario_id'], unique=False)


def downgrade():
    with op.batch_alter_table('exportaciones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exportaciones_usuario_id'))
        batch_op.drop_index('ix_exportaciones_estado_id')

    op.drop_table('exportaciones')
