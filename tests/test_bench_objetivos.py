"""The benchmark table's target column (bench/objetivos.py) reads each row's own figures."""

from bench.objetivos import veredicto


def test_latency_rows_are_judged_by_their_p95_and_the_size():
    fila = "GET /api/todos-tickets?q=<word> (text search)"
    assert veredicto(fila, "p50 12.0 ms · p95 19.9 ms (n=200)", 100_000, "sqlite") == "p95 ≤ 20 ms · met"
    assert veredicto(fila, "p50 12.0 ms · p95 20.7 ms (n=200)", 100_000, "sqlite") == "p95 ≤ 20 ms · NOT met"
    assert veredicto(fila, "p50 12.0 ms · p95 20.7 ms (n=200)", 1_000_000, "sqlite") == "p95 ≤ 50 ms · met"
    assert veredicto("GET /api/estadisticas (admin)", "p50 61.0 ms · p95 70.0 ms", 100_000, "sqlite") \
        == "p50 ≤ 60 ms · NOT met"


def test_throughput_rows_must_reach_the_target_of_their_database():
    fila = "POST /api/tickets (4 concurrent clients, 10 s)"
    resultado = "210 tickets/s · p50 9.0 ms · p95 30.0 ms · errors 0"
    assert veredicto(fila, resultado, 100_000, "sqlite") == "≥ 300 tickets/s · NOT met"
    assert veredicto(fila, resultado, 100_000, "postgresql") == "≥ 150 tickets/s · met"
    assert veredicto("GET /api/tickets/<id> vs a bare Flask JSON route", "900/s vs 1428/s · ratio 63%",
                     100_000, "sqlite") == "≥ 60 % of the bare route · met"


def test_a_row_can_carry_several_targets_and_rows_without_one_say_nothing():
    job = "Excel job tipo=todos, every ticket (100,880 rows)"
    resultado = "3.1 s to listo (12.4 MB, first progress 1.53 s) · worker peak RSS 115 MiB (+1.3 MiB during the job)"
    assert veredicto(job, resultado, 100_000, "sqlite") == "first progress ≤ 1 s · NOT met; ≤ +20 MiB · met"
    assert veredicto("GET /tickets/<número> (ticket page HTML)", "p50 14.9 ms · p95 16.7 ms", 100_000, "sqlite") == ""
    assert veredicto("Seed (1,000,000 tickets)", "131.0 s", 1_000_000, "sqlite") == "≤ 120 s · NOT met"
    assert veredicto("Seed (100,000 tickets)", "131.0 s", 100_000, "sqlite") == ""
