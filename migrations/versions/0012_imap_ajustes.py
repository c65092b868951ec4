"""Email in settings in Configuración > Email: the IMAP mailbox (password encrypted like the SMTP
one, models.EncryptedText), the unknown-sender policy and the size limit. NULL falls back to .env.

Revision ID: 0012
Revises: 0009
"""
from alembic import op

import models
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0013'
branch_labels = None
depends_on = None


def _columnas():
    return [sa.Column('imap_servidor', sa.String(length=255), nullable=True),
            sa.Column('imap_puerto', sa.Integer(), nullable=True),
            sa.Column('imap_ssl', sa.Boolean(), nullable=True),
            sa.Column('imap_usuario', sa.String(length=255), nullable=True),
            sa.Column('imap_password', models.EncryptedText(length=1024), nullable=True),
            sa.Column('imap_carpeta', sa.String(length=255), nullable=True),
            sa.Column('entrante_desconocidos', sa.String(length=10), nullable=True),
            sa.Column('entrante_max_mb', sa.Integer(), nullable=True)]


def upgrade():
    for columna in _columnas():  # nullable columns: a plain ADD COLUMN on both backends
        op.add_column('configuracion_email', columna)


def downgrade():
    with op.batch_alter_table('configuracion_email', schema=None) as batch_op:  # SQLite rebuilds the table
        for columna in reversed(_columnas()):
            batch_op.drop_column(columna.name)
