# The two commands of the README. Both create or update .venv first.
.PHONY: demo test lint check

demo:  ## install, then generate a 20-row Magpie dataset with the embedded model into demo-build/
	bash scripts/install.sh
	.venv/bin/magpie-hub init demo.toml --force
	.venv/bin/magpie-hub generate demo.toml --out demo-build

test:  ## install with the test extras and the browser, then lint, type-check and run the whole test suite
	bash scripts/install.sh dev
	bash scripts/install-browser.sh
	$(MAKE) lint
	MAGPIE_HUB_REQUIRE_EMBEDDED=1 MAGPIE_HUB_REQUIRE_BROWSER=1 .venv/bin/python -m pytest

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

check:  ## the fast loop: lint, type-check and the tests not marked slow (no reinstall, no servers)
	$(MAKE) lint
	.venv/bin/python -m pytest -q -m "not slow and not argilla and not hub_live"
