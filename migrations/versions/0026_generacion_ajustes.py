"""The settings' generation: a number the database draws anew whenever a setting a creation reads changes

Every creation read five settings before writing anything: its category by name, the admins
to email, the notification contacts, the SLA settings and the SLA policy. They change a few
times a year. ``generacion.py`` keeps what a process read under ``generacion_ajustes.valor``
and reads that one number instead, so a creation runs one statement where it ran five.

The triggers, not the application, draw the number: a change made by another process, by a
raw UPDATE in psql, or a backup restored over the database counts as well. The number is
random rather than a counter, so a database rebuilt or restored never shows a number that a
running process has already seen for other rows. On ``usuarios``, only the columns an admin's
email depends on count (a password change does not).

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-30 16:30:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

TABLA = "generacion_ajustes"
# table -> what counts as a change (the UPDATE's column list, or None for any column)
VIGILADAS = {
    "categorias": None,
    "configuracion_email": None,
    "configuracion_sla": None,
    "politicas_sla": None,
    "usuarios": "rol, activo, email, nombre, idioma",
}


def upgrade():
    conn = op.get_bind()
    postgresql = conn.dialect.name == "postgresql"
    op.execute(f"CREATE TABLE {TABLA} (id INTEGER PRIMARY KEY CHECK (id = 1), valor BIGINT NOT NULL)")
    nuevo = "(random() * 9.0e18)::bigint" if postgresql else "random()"
    op.execute(f"INSERT INTO {TABLA} (id, valor) VALUES (1, {nuevo})")
    if postgresql:
        op.execute(f"""
            CREATE FUNCTION {TABLA}_nueva() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE {TABLA} SET valor = {nuevo} WHERE id = 1;
                RETURN NULL;
            END $$""")
        for tabla, columnas in VIGILADAS.items():
            update = f"UPDATE OF {columnas}" if columnas else "UPDATE"
            op.execute(f"CREATE TRIGGER {tabla}_generacion AFTER INSERT OR DELETE OR {update} OR TRUNCATE "
                       f"ON {tabla} FOR EACH STATEMENT EXECUTE FUNCTION {TABLA}_nueva()")
    else:  # SQLite: row triggers only, one per event
        for tabla, columnas in VIGILADAS.items():
            for evento in ("INSERT", "DELETE", f"UPDATE OF {columnas}" if columnas else "UPDATE"):
                op.execute(f"CREATE TRIGGER {tabla}_generacion_{evento.split()[0].lower()} AFTER {evento} ON {tabla} "
                           f"BEGIN UPDATE {TABLA} SET valor = {nuevo} WHERE id = 1; END")


def downgrade():
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for tabla in VIGILADAS:
            op.execute(f"DROP TRIGGER {tabla}_generacion ON {tabla}")
        op.execute(f"DROP FUNCTION {TABLA}_nueva()")
    else:
        for tabla in VIGILADAS:
            for evento in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {tabla}_generacion_{evento}")
    op.execute(f"DROP TABLE {TABLA}")
