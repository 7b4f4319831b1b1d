#!/usr/bin/env bash
# Run the whole test suite: bootstrap (installs what is missing), a throw-away PostgreSQL
# cluster on 127.0.0.1, then pytest — everything on SQLite (the PostgreSQL-specific tests
# included), and, for a full run, the store and CA-core suites once more on PostgreSQL.
#   bash scripts/test.sh [pytest arguments…]
#   bash scripts/test.sh --latest [pytest arguments…]
#       the same against the newest dependency versions pyproject.toml allows (instead of the
#       locked ones), in a separate virtual environment, .venv-latest
# Exit code: pytest's; "no tests collected" (pytest's 5) counts as a failure.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${1:-}" = --latest ]; then
    shift
    export YINXIN_LATEST=1 YINXIN_VENV=${YINXIN_VENV:-$REPO/.venv-latest}
fi
VENV=${YINXIN_VENV:-$REPO/.venv}
export YINXIN_VENV=$VENV
bash "$REPO/scripts/bootstrap.sh" || exit $?
cd "$REPO"
PG_ENV=$(bash scripts/pg.sh env) || { echo "test.sh: could not start PostgreSQL" >&2; exit 1; }
eval "$PG_ENV"
trap 'bash "$REPO/scripts/pg.sh" stop "$YINXIN_TEST_PG_DIR" >/dev/null 2>&1' EXIT
"$VENV/bin/python" -m pytest tests "$@"  # -q comes from pyproject addopts; twice would hide the summary
rc=$?
if [ $rc -eq 5 ]; then
    echo "test.sh: pytest collected no tests: that is a failure" >&2
fi
if [ $# -eq 0 ] && [ $rc -eq 0 ]; then
    echo "== the store and CA-core suites again, on PostgreSQL ($YINXIN_TEST_PG_URL)"
    YINXIN_TEST_DATABASE=postgresql "$VENV/bin/python" -m pytest tests/test_ca_*.py tests/test_ra_*.py \
        tests/test_status_*.py tests/test_audit_*.py tests/test_cli_ca.py tests/test_profiles_load.py \
        tests/test_bulk_issuance.py tests/test_bulk_fast_paths.py tests/test_bulk_processes.py \
        tests/test_tsa_authority.py
    rc=$?
fi
exit $rc
