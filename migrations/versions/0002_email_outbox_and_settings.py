"""email outbox and settings

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:03:14

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('cambios_configuracion',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seccion', sa.String(length=30), nullable=False),
    sa.Column('usuario_id', sa.Integer(), nullable=True),
    sa.Column('campos', sa.JSON(), nullable=False),
    sa.Column('detalle', sa.JSON(), nullable=False),
    sa.Column('fecha', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['usuario_id'], ['usuarios.id'], name=op.f('fk_cambios_configuracion_usuario_id_usuarios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cambios_configuracion'))
    )
    with op.batch_alter_table('cambios_configuracion', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cambios_configuracion_fecha'), ['fecha'], unique=False)
        batch_op.create_index(batch_op.f('ix_cambios_configuracion_seccion'), ['seccion'], unique=False)

    op.create_table('configuracion_email',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('servidor', sa.String(length=255), nullable=True),
    sa.Column('puerto', sa.Integer(), nullable=True),
    sa.Column('usuario', sa.String(length=255), nullable=True),
    sa.Column('password', sa.String(length=255), nullable=True),
    sa.Column('usar_tls', sa.Boolean(), nullable=True),
    sa.Column('usar_ssl', sa.Boolean(), nullable=True),
    sa.Column('remitente_nombre', sa.String(length=120), nullable=True),
    sa.Column('remitente_email', sa.String(length=254), nullable=True),
    sa.Column('contactos_notificacion', sa.Text(), nullable=True),
    sa.Column('fecha_actualizacion', sa.DateTime(), nullable=True),
    sa.Column('actualizado_por_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['actualizado_por_id'], ['usuarios.id'], name=op.f('fk_configuracion_email_actualizado_por_id_usuarios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_configuracion_email'))
    )
    op.create_table('correos_salientes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tipo', sa.String(length=40), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('destinatarios', sa.Text(), nullable=False),
    sa.Column('asunto', sa.String(length=400), nullable=False),
    sa.Column('cuerpo_html', sa.Text(), nullable=False),
    sa.Column('cuerpo_texto', sa.Text(), nullable=False),
    sa.Column('adjuntos', sa.JSON(), nullable=False),
    sa.Column('estado', sa.String(length=10), nullable=False),
    sa.Column('intentos', sa.Integer(), nullable=False),
    sa.Column('proximo_intento', sa.DateTime(), nullable=False),
    sa.Column('ultimo_error', sa.Text(), nullable=True),
    sa.Column('reclamado_por', sa.String(length=80), nullable=True),
    sa.Column('reclamado_en', sa.DateTime(), nullable=True),
    sa.Column('fecha_creacion', sa.DateTime(), nullable=False),
    sa.Column('fecha_envio', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_correos_salientes_ticket_id_tickets'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_correos_salientes'))
    )
    with op.batch_alter_table('correos_salientes', schema=None) as batch_op:
        batch_op.create_index('ix_correos_salientes_estado_proximo', ['estado', 'proximo_intento'], unique=False)
        batch_op.create_index(batch_op.f('ix_correos_salientes_fecha_creacion'), ['fecha_creacion'], unique=False)
        batch_op.create_index(batch_op.f('ix_correos_salientes_ticket_id'), ['ticket_id'], unique=False)



def downgrade():
    with op.batch_alter_table('correos_salientes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_correos_salientes_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_correos_salientes_fecha_creacion'))
        batch_op.drop_index('ix_correos_salientes_estado_proximo')

    op.drop_table('correos_salientes')
    op.drop_table('configuracion_email')
    with op.batch_alter_table('cambios_configuracion', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cambios_configuracion_seccion'))
        batch_op.drop_index(batch_op.f('ix_cambios_configuracion_fecha'))

    op.drop_table('cambios_configuracion')
