#!/usr/bin/env bash
# The whole test suite, integration tests included, from scratch: set-up, the real stack on loopback, lint, pytest.
# Extra arguments go to pytest (e.g. -k spec). Exit 0 only when tests ran and all passed.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh --stack || exit 1
.venv/bin/ruff check . || exit 1
.venv/bin/mypy semcoat semcoat_cli render_service blender_addon analysis training || exit 1

.venv/bin/python -m pytest --durations=15 "$@"  # the slowest tests listed: the suite must stay well under 20 min
rc=$?
if [ $rc -eq 5 ]; then
    echo "test: pytest collected no tests: that is a failure, not a pass" >&2
    exit 1
fi
exit $rc
