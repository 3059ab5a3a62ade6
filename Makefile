# Carina PACS — `make run` starts everything, `make test` runs every check (both set up first).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PG_URL ?= postgres://postgres@127.0.0.1:5432/carina
PYTEST_ARGS ?=
# The OHIF viewer: the prebuilt npm package, pinned (version and tarball checksum), fetched
# once into build/npm-cache and rewritten for /viewer/ (docs/viewer.md says how to upgrade).
OHIF_VERSION := 3.13.2
OHIF_SHA256 := b189d3963bfc58e9394a9db8c7be75d07beb029ec211dbb126d47b62969dd3f1
OHIF_TARBALL := build/npm-cache/ohif-app-$(OHIF_VERSION).tgz
VIEWER_STAMP := build/viewer/.ohif-$(OHIF_VERSION)

.PHONY: run test install system-deps lint test-sqlite test-postgres clean benchmark benchmark-dicomweb benchmark-dimse viewer

run: install viewer
	$(BIN)/carina serve

install: system-deps $(STAMP)

$(STAMP): pyproject.toml
	@command -v python3 >/dev/null || { echo "python3 is needed (apt-get install python3 python3-venv)"; exit 1; }
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

viewer: install $(VIEWER_STAMP)

$(VIEWER_STAMP): | $(STAMP)
	@command -v npm >/dev/null || { echo "npm is needed to fetch the OHIF viewer (apt-get install npm)"; exit 1; }
	mkdir -p build/npm-cache
	test -f $(OHIF_TARBALL) || npm pack --silent --pack-destination build/npm-cache @ohif/app@$(OHIF_VERSION)
	echo "$(OHIF_SHA256)  $(OHIF_TARBALL)" | sha256sum --check --quiet
	rm -rf build/ohif-unpack && mkdir -p build/ohif-unpack
	tar -xzf $(OHIF_TARBALL) -C build/ohif-unpack
	$(BIN)/python -m carina.viewer.build build/ohif-unpack/package/dist build/viewer
	rm -rf build/ohif-unpack
	touch $@

# Debian tools the tests and DICOM peers need, installed only when missing.
system-deps:
	@missing=""; \
	command -v dcmdump >/dev/null || missing="$$missing dcmtk"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	python3 -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

lint: install
	$(BIN)/ruff check src tests benchmarks conftest.py
	$(BIN)/ruff format --check src tests benchmarks conftest.py
	$(BIN)/mypy
	$(BIN)/lint-imports

# The whole suite runs twice: on the embedded SQLite default and on PostgreSQL (the test run
# creates and drops its own database, test_carina).
test: viewer lint
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

test-sqlite: install
	rm -rf var/test-sqlite
	CARINA_HOME=$(CURDIR)/var/test-sqlite $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: install
	rm -rf var/test-postgres
	CARINA_HOME=$(CURDIR)/var/test-postgres CARINA_DATABASE_URL=$(PG_URL) $(BIN)/pytest $(PYTEST_ARGS)

benchmark: install
	$(BIN)/python benchmarks/ingest.py

# DICOMweb against Debian's Orthanc with its DICOMweb plugin, installed here when missing.
benchmark-dicomweb: install
	@test -x /usr/sbin/Orthanc -a -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so || { \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq orthanc orthanc-dicomweb; }
	$(BIN)/python benchmarks/dicomweb.py

# DICOM C-STORE/C-FIND and the floor of a durable C-STORE, against Debian's Orthanc (installed
# here when missing).
benchmark-dimse: install
	@test -x /usr/sbin/Orthanc || { \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq orthanc; }
	$(BIN)/python benchmarks/dimse_ingest.py
	$(BIN)/python benchmarks/cstore_floor.py

clean:
	rm -rf $(VENV) var/test-sqlite var/test-postgres
