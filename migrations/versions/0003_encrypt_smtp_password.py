"""Encrypt the SMTP password of Configuración > Email at rest

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:18:37.830150

The column widens for Fernet tokens, and a password stored in clear by 0002 is encrypted
with the key derived from SECRET_KEY (same derivation as models.EncryptedText).
"""
import base64
import hashlib

import sqlalchemy as sa
from alembic import op
from flask import current_app

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

PREFIX = "fernet:"


def _fernet():
    from cryptography.fernet import Fernet

    key = hashlib.sha256(b"mesa-de-ayuda/encrypted-text/" + current_app.config["SECRET_KEY"].encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def upgrade():
    with op.batch_alter_table('configuracion_email', schema=None) as batch_op:
        batch_op.alter_column('password', existing_type=sa.VARCHAR(length=255), type_=sa.String(length=1024),
                              existing_nullable=True)
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, password FROM configuracion_email WHERE password IS NOT NULL")).all()
    for row_id, password in rows:
        if not password.startswith(PREFIX):
            token = PREFIX + _fernet().encrypt(password.encode()).decode()
            conn.execute(sa.text("UPDATE configuracion_email SET password = :p WHERE id = :i"), {"p": token, "i": row_id})


def downgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, password FROM configuracion_email WHERE password IS NOT NULL")).all()
    for row_id, password in rows:
        if password.startswith(PREFIX):
            clear = _fernet().decrypt(password[len(PREFIX):].encode()).decode()
            conn.execute(sa.text("UPDATE configuracion_email SET password = :p WHERE id = :i"), {"p": clear, "i": row_id})
    with op.batch_alter_table('configuracion_email', schema=None) as batch_op:
        batch_op.alter_column('password', existing_type=sa.String(length=1024), type_=sa.VARCHAR(length=255),
                              existing_nullable=True)
