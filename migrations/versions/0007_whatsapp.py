"""whatsapp: bot rules and Configuración > WhatsApp (issue 9)

Revision ID: 0007
Revises: 0006

"""
from alembic import op

import models
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reglas_bot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('palabras_clave', sa.String(length=500), nullable=False),
    sa.Column('respuesta', sa.Text(), nullable=False),
    sa.Column('idioma', sa.String(length=5), nullable=False),
    sa.Column('activa', sa.Boolean(), nullable=False),
    sa.Column('orden', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reglas_bot'))
    )
    with op.batch_alter_table('reglas_bot', schema=None) as batch_op:
        batch_op.create_index('ix_reglas_bot_activa_orden', ['activa', 'orden'], unique=False)
    op.create_table('configuracion_whatsapp',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('verify_token', models.EncryptedText(length=1024), nullable=True),
    sa.Column('app_secret', models.EncryptedText(length=1024), nullable=True),
    sa.Column('access_token', models.EncryptedText(length=2048), nullable=True),
    sa.Column('phone_number_id', sa.String(length=40), nullable=True),
    sa.Column('graph_base', sa.String(length=255), nullable=True),
    sa.Column('plantilla', sa.String(length=120), nullable=True),
    sa.Column('saludo', sa.Text(), nullable=True),
    sa.Column('fuera_de_horario', sa.Text(), nullable=True),
    sa.Column('horario', sa.String(length=20), nullable=True),
    sa.Column('palabras_escalado', sa.Text(), nullable=True),
    sa.Column('fallos_para_escalar', sa.Integer(), nullable=True),
    sa.Column('fecha_actualizacion', models.UTCDateTime(), nullable=True),
    sa.Column('actualizado_por_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['actualizado_por_id'], ['usuarios.id'], name=op.f('fk_configuracion_whatsapp_actualizado_por_id_usuarios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_configuracion_whatsapp'))
    )


def downgrade():
    op.drop_table('configuracion_whatsapp')
    with op.batch_alter_table('reglas_bot', schema=None) as batch_op:
        batch_op.drop_index('ix_reglas_bot_activa_orden')
    op.drop_table('reglas_bot')
