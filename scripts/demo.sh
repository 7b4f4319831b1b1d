#!/usr/bin/env bash
# The main job, end to end, in a fresh yinxin home on the embedded SQLite database:
#   bash scripts/demo.sh
# `yinxin demo` sets up an SM2 root and issuing CA, two organisations with their people and
# official seals, drafts a request, walks the upward route (countersigning included), seals it
# over the organisation's name and the date, sends, receives, verifies and archives it, and
# says where the sealed PDF and the reports are.  Then the sealed PDF is judged once more by
# `yinxin seal verify`, `qpdf --check` and poppler.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${YINXIN_VENV:-$REPO/.venv}
bash "$REPO/scripts/bootstrap.sh"
Y="$VENV/bin/yinxin"

DEMO_HOME=$(mktemp -d "${TMPDIR:-/tmp}/yinxin-demo.XXXXXX")
"$Y" demo --home "$DEMO_HOME" "$@"
SEALED="$DEMO_HOME/demo/sealed.pdf"
echo
echo "== yinxin seal verify"
"$Y" --home "$DEMO_HOME" seal verify "$SEALED"
echo "== qpdf --check"
qpdf --check "$SEALED" | tail -n 1
echo "== poppler: page 1 rendered to $DEMO_HOME/demo/page-1.png"
pdftoppm -png -r 80 -f 1 -l 1 "$SEALED" "$DEMO_HOME/demo/page"
echo "== audit log"
"$Y" --home "$DEMO_HOME" audit verify
