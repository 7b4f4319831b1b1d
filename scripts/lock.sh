#!/usr/bin/env bash
# Refresh requirements/lock.txt: the exact versions (with hashes) that scripts/bootstrap.sh
# installs and the suite was run with.  pyproject.toml keeps the compatible ranges that people who
# embed yinxin get; the lock pins one tested choice inside them, for every platform (--universal).
#
#   bash scripts/lock.sh                 re-resolve, keeping locked versions that still fit
#   bash scripts/lock.sh --upgrade       take the newest versions pyproject.toml allows
#   bash scripts/lock.sh --upgrade-package cryptography    one package only
#
# Needs uv (https://github.com/astral-sh/uv; `pip install uv` puts it in ~/.local or the venv).
# After a refresh run `bash scripts/test.sh` and commit the lock with what it changed.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UV=$(command -v uv || true)
if [ -z "$UV" ]; then
    VENV=${YINXIN_VENV:-$REPO/.venv}
    if [ -x "$VENV/bin/uv" ]; then UV="$VENV/bin/uv"; else
        echo "lock.sh: uv is not installed: pip install uv" >&2; exit 1; fi
fi
cd "$REPO"
"$UV" pip compile pyproject.toml --extra test --generate-hashes --universal --python-version 3.11 \
    --custom-compile-command "bash scripts/lock.sh" -o requirements/lock.txt "$@"
