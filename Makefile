# Mesa de Ayuda — two commands on a fresh machine:
#   make run    install, migrate the embedded SQLite database, seed demo data if empty, serve
#   make test   install, run the whole suite on SQLite and on a throwaway PostgreSQL (in parallel)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# HOST and PORT may come from the environment or from .env
-include .env
HOST := $(or $(HOST),127.0.0.1)
PORT := $(or $(PORT),5000)
export FLASK_APP := app

.PHONY: run test test-sqlite test-postgresql bench bench-peer deps system-deps lint clean compile-translations update-translations

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the requirement files change.
$(VENV)/.deps-stamp: requirements.txt requirements-dev.txt | $(VENV)/bin/activate
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

deps: $(VENV)/.deps-stamp

# Debian packages the tests need: PostgreSQL binaries (a throwaway cluster is started by
# the tests, no service needed), chromium for the browser tests and wrk, the benchmarks' C load
# generator (its wrapper is tested). Installed when missing.
system-deps:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing="$$missing fonts-dejavu-core"; \
	[ -x /usr/sbin/dovecot ] && [ -d /usr/lib/dovecot ] && ls /usr/lib/dovecot/imap >/dev/null 2>&1 || missing="$$missing dovecot-imapd"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

run: deps compile-translations
	@mkdir -p instance
	$(VENV)/bin/flask db upgrade
	$(PY) registrar_ingenieros.py --demo --if-empty
	@echo ""
	@echo "  Mesa de Ayuda: http://$(HOST):$(PORT)"
	@echo "  Demo logins: admin/admin123  ing_carlos/ing_carlos123  ing_maria/ing_maria123  ing_jorge/ing_jorge123  usuario/usuario123"
	@echo ""
	@# OUTBOX_THREAD: this process also sends the queued emails (production runs `flask send-emails --loop`)
	OUTBOX_THREAD=$(or $(OUTBOX_THREAD),1) $(VENV)/bin/flask run --host $(HOST) --port $(PORT)

# The two backends run at the same time (their fixtures share nothing: free ports, temporary
# directories, one chromium each), each into its own log; the logs are printed one after the
# other when both end, and either failing fails `make test`.
test: deps system-deps compile-translations
	$(VENV)/bin/ruff check .
	@mkdir -p test-artifacts
	@echo "Running the SQLite and PostgreSQL suites in parallel (test-artifacts/test-{sqlite,postgresql}.log)..."
	@$(MAKE) --no-print-directory test-sqlite >test-artifacts/test-sqlite.log 2>&1 & sqlite=$$!; \
	$(MAKE) --no-print-directory test-postgresql >test-artifacts/test-postgresql.log 2>&1 & postgresql=$$!; \
	wait $$sqlite; rc_sqlite=$$?; wait $$postgresql; rc_postgresql=$$?; \
	for backend in sqlite postgresql; do \
	  echo ""; echo "======================== $$backend ========================"; \
	  cat test-artifacts/test-$$backend.log; \
	done; \
	echo ""; echo "SQLite: exit $$rc_sqlite, PostgreSQL: exit $$rc_postgresql"; \
	test $$rc_sqlite -eq 0 && test $$rc_postgresql -eq 0

# pytest exit code 5 (no tests collected) is a failure like any other non-zero code.
test-sqlite:
	MESA_TEST_DB=sqlite $(VENV)/bin/pytest

test-postgresql:
	MESA_TEST_DB=postgresql $(VENV)/bin/pytest

# UI languages (Flask-Babel): the .po catalogs are committed, the .mo files are built here.
compile-translations: deps
	$(VENV)/bin/pybabel -q compile -d translations

# After adding or changing UI strings: refresh the template and both catalogs, then fill in
# the new msgstr entries of translations/es (English msgids; tests/test_panels.py checks both).
update-translations: deps
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k _l -k N_ -k DomainError -k ValidationFailed -k Unauthorized -k NotFound \
	  -k Forbidden -k Conflict -k Gone -k traducir -k ErrorCampo --no-location --sort-output \
	  --ignore-dirs='.* _* tests bench migrations instance static translations' \
	  --project="Mesa de Ayuda" -o translations/messages.pot .
	$(VENV)/bin/pybabel -q update -i translations/messages.pot -d translations --no-fuzzy-matching --ignore-obsolete

# TICKETS=1000000 for the million-ticket run (issue 13 target 6); 100,000 by default.
bench: deps system-deps
	$(PY) bench/bench.py $(if $(TICKETS),--tickets $(TICKETS))
	$(PY) bench/bench_email.py
	$(PY) bench/bench_sla.py
	$(PY) bench/bench_sse.py

# Mesa next to django-helpdesk 2.6.1 (its own virtualenv, cached in bench/.peer-venv), same data,
# same gunicorn workers, interleaved requests: prints the ratios, writes bench/results/peer.md.
bench-peer: deps system-deps
	$(PY) bench/bench_peer.py $(if $(TICKETS),--tickets $(TICKETS))

lint: deps
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) instance/*.db test-artifacts bench/.peer-venv
