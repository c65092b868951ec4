"""SLA outcome stored on the ticket (issue 12, metrics as SQL aggregates)

Business seconds to first response and to resolution and whether each target was met, written by
``sla.registrar_resultado`` when they happen. Existing tickets are backfilled here with the same
Python computation (the office calendar of ``configuracion_sla`` in APP_TIMEZONE).

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-29 23:00:00

"""
from alembic import op
from flask import current_app, has_app_context

import models
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0015'
branch_labels = None
depends_on = None

LOTE = 2000


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_primera_respuesta_segundos', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sla_primera_respuesta_cumplida', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('sla_resolucion_segundos', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sla_resolucion_cumplida', sa.Boolean(), nullable=True))
    _rellenar()


def _rellenar():
    """Backfill the outcome of every answered or resolved ticket that has due times."""
    import sla

    conn = op.get_bind()
    config = sa.table('configuracion_sla', sa.column('id', sa.Integer), sa.column('horario', sa.JSON),
                      sa.column('feriados', sa.JSON))
    fila = conn.execute(sa.select(config.c.horario, config.c.feriados).where(config.c.id == 1)).first()
    horario, feriados = (fila[0], fila[1]) if fila is not None else (sla.HORARIO_24X7, [])
    zona = current_app.config.get("APP_TIMEZONE", "UTC") if has_app_context() else "UTC"
    cal = sla.Calendario.desde(horario or {}, feriados or (), zona)

    t = sa.table('tickets', *(sa.column(c, models.UTCDateTime) for c in (
        'fecha_creacion', 'fecha_primera_respuesta', 'fecha_resolucion', 'sla_primera_respuesta_vence',
        'sla_resolucion_vence', 'sla_pausa_desde')), sa.column('id', sa.Integer),
        sa.column('sla_pausado_segundos', sa.Integer), sa.column('sla_primera_respuesta_segundos', sa.Integer),
        sa.column('sla_primera_respuesta_cumplida', sa.Boolean), sa.column('sla_resolucion_segundos', sa.Integer),
        sa.column('sla_resolucion_cumplida', sa.Boolean))
    pendientes = sa.select(t.c.id, t.c.fecha_creacion, t.c.fecha_primera_respuesta, t.c.fecha_resolucion,
                           t.c.sla_primera_respuesta_vence, t.c.sla_resolucion_vence, t.c.sla_pausado_segundos,
                           t.c.sla_pausa_desde).where(sa.or_(
                               sa.and_(t.c.fecha_primera_respuesta.is_not(None),
                                       t.c.sla_primera_respuesta_vence.is_not(None)),
                               sa.and_(t.c.fecha_resolucion.is_not(None), t.c.sla_resolucion_vence.is_not(None))))
    actualizar = t.update().where(t.c.id == sa.bindparam('b_id')).values(
        sla_primera_respuesta_segundos=sa.bindparam('b_s1'), sla_primera_respuesta_cumplida=sa.bindparam('b_ok1'),
        sla_resolucion_segundos=sa.bindparam('b_s2'), sla_resolucion_cumplida=sa.bindparam('b_ok2'))
    ultimo = 0
    while True:
        filas = conn.execute(pendientes.where(t.c.id > ultimo).order_by(t.c.id).limit(LOTE)).all()
        if not filas:
            break
        cambios = []
        for r in filas:
            s1 = ok1 = s2 = ok2 = None
            if r.fecha_primera_respuesta is not None and r.sla_primera_respuesta_vence is not None:
                s1 = sla.segundos_habiles(r.fecha_creacion, r.fecha_primera_respuesta, cal)
                ok1 = r.fecha_primera_respuesta <= r.sla_primera_respuesta_vence
            if r.fecha_resolucion is not None and r.sla_resolucion_vence is not None:
                s2 = sla.transcurrido(r, r.fecha_resolucion, cal)  # reads the same attribute names
                ok2 = r.fecha_resolucion <= r.sla_resolucion_vence
            cambios.append({'b_id': r.id, 'b_s1': s1, 'b_ok1': ok1, 'b_s2': s2, 'b_ok2': ok2})
        conn.execute(actualizar, cambios)
        ultimo = filas[-1].id


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('sla_resolucion_cumplida')
        batch_op.drop_column('sla_resolucion_segundos')
        batch_op.drop_column('sla_primera_respuesta_cumplida')
        batch_op.drop_column('sla_primera_respuesta_segundos')
