"""The WhatsApp bot's one job: given what the customer wrote, decide the answer.

Keyword rules (``ReglaBot``, edited by admins) are matched accent- and case-insensitively as
whole words; the lowest ``orden`` wins and its reply is in the rule's own language. The first
message of a conversation gets the greeting; outside office hours, the out-of-hours notice.
Asking for a person (configurable words) or too many misses in a row means escalation;
whatsapp.py acts on the decision (store, send, escalate)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from sqlalchemy import select

from models import ReglaBot, db

SALUDO = "¡Hola! Soy el asistente de la Mesa de Ayuda. Escribe tu consulta o «agente» para hablar con una persona."
FUERA_DE_HORARIO = ("Ahora estamos fuera de horario. Te responderemos en cuanto abramos; "
                    "si es urgente escribe «agente» y abriremos un ticket.")
NO_ENTENDIDO = "No te he entendido. ¿Puedes decirlo de otra forma? Escribe «agente» para hablar con una persona."
SALUDOS = ("hola", "buenas", "buenos dias", "buenas tardes", "buenas noches", "hello", "hi", "hey")


def normalizar(texto: str) -> str:
    """Lower case, accents removed, punctuation as spaces, single spaces."""
    sin_acentos = "".join(c for c in unicodedata.normalize("NFKD", texto or "") if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", sin_acentos.lower()).split())


def contiene(texto_normalizado: str, frase: str) -> bool:
    frase = normalizar(frase)
    return bool(frase) and f" {frase} " in f" {texto_normalizado} "


def palabras(lista: str) -> list[str]:
    return [p.strip() for p in (lista or "").split(",") if p.strip()]


@dataclass
class Decision:
    respuestas: list[str] = field(default_factory=list)
    escalar: Optional[str] = None  # the reason: "palabra_clave", "no_entendido"
    entendido: bool = True


def dentro_de_horario(horario: Optional[str], ahora: datetime) -> bool:
    """``horario`` "HH:MM-HH:MM" Monday to Friday in ``ahora``'s clock; empty means always open."""
    if not horario:
        return True
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", horario)
    if not m:
        return True
    desde = int(m[1]) * 60 + int(m[2])
    hasta = int(m[3]) * 60 + int(m[4])
    minuto = ahora.hour * 60 + ahora.minute
    return ahora.weekday() < 5 and desde <= minuto < hasta


def regla_para(texto_normalizado: str) -> Optional[ReglaBot]:
    reglas = db.session.execute(
        select(ReglaBot).where(ReglaBot.activa.is_(True)).order_by(ReglaBot.orden, ReglaBot.id)).scalars()
    for regla in reglas:
        if any(contiene(texto_normalizado, p) for p in palabras(regla.palabras_clave)):
            return regla
    return None


def decidir(texto: str, *, primero: bool, fallos_previos: int, ajustes, ahora: datetime) -> Decision:
    """What to answer to ``texto``. ``ajustes`` is whatsapp.Ajustes (greeting, hours, escalation)."""
    norm = normalizar(texto)
    decision = Decision()
    if any(contiene(norm, p) for p in ajustes.palabras_escalado):
        decision.escalar = "palabra_clave"
        return decision
    if primero:
        decision.respuestas.append(ajustes.saludo or SALUDO)
        if not dentro_de_horario(ajustes.horario, ahora):
            decision.respuestas.append(ajustes.fuera_de_horario or FUERA_DE_HORARIO)
    regla = regla_para(norm)
    if regla is not None:
        decision.respuestas.append(regla.respuesta)
        return decision
    if primero or norm in SALUDOS:
        if not primero:
            decision.respuestas.append(ajustes.saludo or SALUDO)
        return decision
    decision.entendido = False
    if fallos_previos + 1 >= ajustes.fallos_para_escalar:
        decision.escalar = "no_entendido"
    else:
        decision.respuestas.append(NO_ENTENDIDO)
    return decision
