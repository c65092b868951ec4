"""Issue 13's targets beside each row of ``make bench``: the table says itself which are met.

``veredicto(label, result, tickets, backend)`` returns the targets that apply to a row and
whether the measured figures meet them ("p95 ≤ 25 ms · met"), or "" for a row without one.
The figures are read back from the row's own text, so the table and the verdict cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

MILLON = 1_000_000
EXCEL_ANTES_S = 13.4  # the full Excel of 100,000 tickets on the development machine when the issue was filed


@dataclass(frozen=True)
class Objetivo:
    figura: str  # a regex whose first group is the measured number in the row's result
    limite: float
    mayor: bool = False  # True: the figure must reach the limit (throughput), else stay under it
    texto: str = ""

    def evaluar(self, resultado: str) -> Optional[str]:
        m = re.search(self.figura, resultado)
        if m is None:
            return None
        valor = float(m.group(1).replace(",", ""))
        ok = valor >= self.limite if self.mayor else valor <= self.limite
        return f"{self.texto} · {'met' if ok else 'NOT met'}"


def _p95(ms: float) -> Objetivo:
    return Objetivo(r"p95 ([\d.,]+) ms", ms, texto=f"p95 ≤ {ms:g} ms")


def _p50(ms: float) -> Objetivo:
    return Objetivo(r"p50 ([\d.,]+) ms", ms, texto=f"p50 ≤ {ms:g} ms")


def objetivos(label: str, tickets: int, backend: str) -> list[Objetivo]:
    """The issue-13 targets of the row named ``label`` at ``tickets`` tickets on ``backend``
    ("sqlite" or "postgresql"); sizes between the published ones take the 1M bound above 100k."""
    grande = tickets > 100_000
    if label.startswith("GET /api/todos-tickets?q="):
        return [_p95(50 if grande else 20)]
    if label.startswith("GET /api/todos-tickets"):
        return [_p95(25)]
    if label.startswith("GET /tickets/admin"):
        return [_p95(40)]
    if label.startswith("GET /api/estadisticas"):
        return [_p50(250 if grande else 60)]
    if label.startswith("GET /api/tickets/<id> vs a bare"):
        return [Objetivo(r"ratio (\d+)%", 60, mayor=True, texto="≥ 60 % of the bare route")]
    if label.startswith("POST /api/tickets"):
        minimo = 300 if backend == "sqlite" else 150
        return [Objetivo(r"([\d,]+) tickets/s", minimo, mayor=True, texto=f"≥ {minimo} tickets/s")]
    if label.startswith("Excel job") and "every ticket" in label:
        return [Objetivo(r"first progress ([\d.]+) s", 1.0, texto="first progress ≤ 1 s"),
                Objetivo(r"\(\+([\d.]+) MiB", 20, texto="≤ +20 MiB")]
    if label.startswith("Excel tipo=todos, every ticket") and not grande:
        limite = round(EXCEL_ANTES_S * 0.6, 1)
        return [Objetivo(r"^([\d.]+) s", limite, texto=f"≤ {limite:g} s (60 % of {EXCEL_ANTES_S:g} s)")]
    if label.startswith("Seed") and tickets >= MILLON:
        return [Objetivo(r"([\d.]+) s", 120, texto="≤ 120 s")]
    return []


def veredicto(label: str, resultado: str, tickets: int, backend: str) -> str:
    return "; ".join(filter(None, (o.evaluar(resultado) for o in objetivos(label, tickets, backend))))
