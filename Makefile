# The two commands of the README. Both create or update .venv first.
.PHONY: demo test lint

demo:  ## install, then generate a 20-row Magpie dataset with the embedded model into demo-build/
	bash scripts/install.sh
	.venv/bin/magpie-hub init demo.toml --force
	.venv/bin/magpie-hub generate demo.toml --out demo-build

test:  ## install with the test extras, then lint, type-check and run the whole test suite
	bash scripts/install.sh dev
	$(MAKE) lint
	MAGPIE_HUB_REQUIRE_EMBEDDED=1 .venv/bin/python -m pytest

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
