"""seed 003 support API: category mapping set by admins

Revision ID: 0006
Revises: 0010
"""
from alembic import op

import sqlalchemy as sa


revision = '0006'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('soporte_categorias',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clave', sa.String(length=40), nullable=False),
    sa.Column('categoria_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['categoria_id'], ['categorias.id'], name=op.f('fk_soporte_categorias_categoria_id_categorias')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_soporte_categorias')),
    sa.UniqueConstraint('clave', name=op.f('uq_soporte_categorias_clave'))
    )
    with op.batch_alter_table('soporte_categorias', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_soporte_categorias_categoria_id'), ['categoria_id'], unique=False)


def downgrade():
    with op.batch_alter_table('soporte_categorias', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_soporte_categorias_categoria_id'))
    op.drop_table('soporte_categorias')
