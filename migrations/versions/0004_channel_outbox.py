"""One outbox for every channel: correos_salientes becomes envios (with canal)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Rows queued before the upgrade keep their id, estado, tries and due time and become
canal='email' rows, so nothing queued is lost (tests/test_outbox.py upgrades a database with
a queued email and delivers it).
"""
import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OLD_INDEXES = ('ix_correos_salientes_estado_proximo', 'ix_correos_salientes_fecha_creacion',
               'ix_correos_salientes_ticket_id')


def upgrade():
    with op.batch_alter_table('correos_salientes', schema=None) as batch_op:
        for name in OLD_INDEXES:
            batch_op.drop_index(name)
    op.rename_table('correos_salientes', 'envios')
    with op.batch_alter_table('envios', schema=None) as batch_op:
        batch_op.add_column(sa.Column('canal', sa.String(length=20), server_default='email', nullable=False))
        batch_op.add_column(sa.Column('datos', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('id_externo', sa.String(length=255), nullable=True))
        batch_op.alter_column('asunto', existing_type=sa.String(length=400), nullable=True)
        batch_op.alter_column('cuerpo_html', existing_type=sa.Text(), nullable=True)
        batch_op.drop_constraint('fk_correos_salientes_ticket_id_tickets', type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_envios_ticket_id_tickets'), 'tickets', ['ticket_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.create_index('ix_envios_estado_proximo', ['estado', 'proximo_intento'], unique=False)
        batch_op.create_index(batch_op.f('ix_envios_fecha_creacion'), ['fecha_creacion'], unique=False)
        batch_op.create_index(batch_op.f('ix_envios_ticket_id'), ['ticket_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_envios_canal'), ['canal'], unique=False)
        batch_op.create_index(batch_op.f('ix_envios_id_externo'), ['id_externo'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE envios RENAME CONSTRAINT pk_correos_salientes TO pk_envios')


def downgrade():
    conn = op.get_bind()
    conn.execute(sa.text("DELETE FROM envios WHERE canal <> 'email'"))
    with op.batch_alter_table('envios', schema=None) as batch_op:
        for name in ('ix_envios_id_externo', 'ix_envios_canal', 'ix_envios_ticket_id', 'ix_envios_fecha_creacion',
                     'ix_envios_estado_proximo'):
            batch_op.drop_index(name)
        batch_op.drop_constraint('fk_envios_ticket_id_tickets', type_='foreignkey')
        batch_op.create_foreign_key('fk_correos_salientes_ticket_id_tickets', 'tickets', ['ticket_id'], ['id'],
                                    ondelete='SET NULL')
        batch_op.drop_column('id_externo')
        batch_op.drop_column('datos')
        batch_op.drop_column('canal')
    if conn.dialect.name == 'postgresql':
        op.execute('ALTER TABLE envios RENAME CONSTRAINT pk_envios TO pk_correos_salientes')
    op.rename_table('envios', 'correos_salientes')
    with op.batch_alter_table('correos_salientes', schema=None) as batch_op:
        batch_op.create_index('ix_correos_salientes_estado_proximo', ['estado', 'proximo_intento'], unique=False)
        batch_op.create_index('ix_correos_salientes_fecha_creacion', ['fecha_creacion'], unique=False)
        batch_op.create_index('ix_correos_salientes_ticket_id', ['ticket_id'], unique=False)

