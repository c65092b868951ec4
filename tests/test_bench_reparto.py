"""bench/reparto.py reads each process's CPU from /proc: the figures it prints rest on these."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bench import reparto

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")


def test_the_cpu_of_a_process_grows_by_what_it_spent():
    antes = reparto.cpu([os.getpid()])
    fin = time.process_time() + 0.3
    while time.process_time() < fin:
        pass
    assert 0.2 <= reparto.cpu([os.getpid()]) - antes <= 5
    assert reparto.cpu([os.getpid(), 2 ** 22 + 12345]) >= antes  # a pid that is gone counts nothing


def test_children_and_names_find_a_spawned_process():
    hijo = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.1)
        assert hijo.pid in reparto.hijos(os.getpid())
        assert hijo.pid in reparto.llamados("sleep")
        assert hijo.pid not in reparto.llamados("postgres")
    finally:
        hijo.kill()
        hijo.wait()
