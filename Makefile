# coremail: `make start` to run it, `make test` to test it (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= var
DOMAIN ?= example.test
# Debian packages the tests use as real peers and clients.
TEST_DEBS := swaks postfix fetchmail isync curl postgresql chromium fonts-noto-cjk clamav clamav-daemon clamav-milter opendkim opendkim-tools postsrsd

# Dovecot's imaptest, built once from ../shared/imaptest (its build.sh installs dovecot-dev
# and dovecot-imapd with apt-get when missing); bench/imaptest and the compliance run use it.
IMAPTEST_SRC ?= ../shared/imaptest
IMAPTEST_BUILD ?= $(VENV)/imaptest

.PHONY: install start stop test test-postgresql test-deps lint clean imaptest messages

$(BIN)/coremail: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

install: $(BIN)/coremail

start: install
	@if [ ! -f $(HOME_DIR)/conf/coremail.toml ]; then \
		$(BIN)/coremail --home $(HOME_DIR) init --domain $(DOMAIN); fi
	$(BIN)/coremail --home $(HOME_DIR) start

stop:
	$(BIN)/coremail --home $(HOME_DIR) shutdown

$(VENV)/.test-deps: $(BIN)/coremail pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

test-deps: $(VENV)/.test-deps
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		echo "postfix postfix/main_mailer_type select No configuration" | $$SUDO debconf-set-selections; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(IMAPTEST_BUILD)/bin/imaptest:
	@test -x $(IMAPTEST_SRC)/build.sh || { echo "no $(IMAPTEST_SRC)/build.sh (IMAPTEST_SRC=...)"; exit 1; }
	@SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	$$SUDO env IMAPTEST_BUILD=$(abspath $(IMAPTEST_BUILD)) JOBS=$${JOBS:-2} bash $(IMAPTEST_SRC)/build.sh

imaptest: $(IMAPTEST_BUILD)/bin/imaptest

# The web pages' strings: re-extract them and merge them into every catalog
# (then translate the new entries in src/coremail/web/locale/*/LC_MESSAGES/messages.po).
# The address checker's reasons (AddressError templates) are shown on the pages too.
WEB := src/coremail/web
WEB_EXTRA := src/coremail/mail/address.py
messages: install
	$(BIN)/pybabel -q extract -F $(WEB)/babel.cfg --no-location --sort-output -k AddressError \
		--msgid-bugs-address= --project=coremail -o $(WEB)/locale/messages.pot $(WEB) \
		$(WEB_EXTRA)
	$(BIN)/pybabel -q update -i $(WEB)/locale/messages.pot -d $(WEB)/locale --no-fuzzy-matching --ignore-obsolete

lint: test-deps
	$(BIN)/ruff check --no-cache src tests bench/*
	$(BIN)/lint-imports
	$(BIN)/vulture --min-confidence 60 src vulture_whitelist.py

test: test-deps lint imaptest
	COREMAIL_REQUIRE_PEERS=1 $(BIN)/python -m pytest -q -p no:cacheprovider

# The services' functional suites with every test home on PostgreSQL (one throw-away
# cluster, a database per home: tests/support/testdb.py). Not part of `make test`.
PG_SUITES ?= tests/smtpd tests/pop3d tests/imapd tests/e2e tests/services tests/queue
test-postgresql: test-deps
	COREMAIL_TEST_DATABASE=postgresql $(BIN)/python -m pytest -q -p no:cacheprovider $(PG_SUITES)

clean:
	rm -rf $(VENV) build src/*.egg-info
