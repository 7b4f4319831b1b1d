#!/usr/bin/env bash
# Run the whole test suite: bootstrap (installs what is missing), then pytest.
#   bash scripts/test.sh [pytest arguments…]
# Exit code: pytest's; "no tests collected" (pytest's 5) counts as a failure.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${YINXIN_VENV:-$REPO/.venv}
bash "$REPO/scripts/bootstrap.sh" || exit $?
cd "$REPO"
"$VENV/bin/python" -m pytest tests "$@"  # -q comes from pyproject addopts; twice would hide the summary
rc=$?
if [ $rc -eq 5 ]; then
    echo "test.sh: pytest collected no tests: that is a failure" >&2
fi
exit $rc
