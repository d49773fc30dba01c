# Gatehouse: `make run` starts the portal on embedded defaults; `make test` runs the suite.
# Both create the virtualenv and install the locked dependencies first if needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test qa install migrate fmt clean

$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" \
		>$(VENV)/pip.log 2>&1 || (cat $(VENV)/pip.log; exit 1)
	$(BIN)/uv sync --frozen --inexact --quiet
	@touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --no-input -v 0

run: migrate
	$(BIN)/python manage.py seed_demo --no-personas
	$(BIN)/python manage.py seed_runbooks
	$(BIN)/python manage.py collectstatic --no-input -v 0
	$(BIN)/python manage.py serve

# The SSO tests run a real OpenID Connect provider under Node.js (tests/oidc_provider). Its
# packages are installed from the committed lock file whenever it changes; two `make test` runs
# side by side (CI) take turns under flock. Without npm the SSO tests are skipped with a reason
# (they fail instead under GATEHOUSE_REQUIRE_BROWSER=1).
OIDC_PROVIDER := tests/oidc_provider
OIDC_STAMP := $(OIDC_PROVIDER)/node_modules/.gatehouse-installed

$(OIDC_STAMP): $(OIDC_PROVIDER)/package.json $(OIDC_PROVIDER)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		flock $(OIDC_PROVIDER) sh -c 'if [ ! -f $@ ] || [ $(OIDC_PROVIDER)/package-lock.json -nt $@ ] \
			|| [ $(OIDC_PROVIDER)/package.json -nt $@ ]; then \
			npm ci --prefix $(OIDC_PROVIDER) --no-audit --no-fund --loglevel=error && touch $@; fi'; \
	else \
		echo "npm not found: the single sign-on tests (real OpenID Connect provider) are skipped"; \
	fi

test: install $(OIDC_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

qa: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy .
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .mypy_cache .ruff_cache $(OIDC_PROVIDER)/node_modules
