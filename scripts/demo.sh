#!/usr/bin/env bash
# The main job, end to end, in a fresh yinxin home on the embedded SQLite database:
#   bash scripts/demo.sh
# `yinxin demo` creates the first admin and the CA/RA officers, an SM2 root and issuing CA, two
# organisations whose people get accounts, passwords of their own and person certificates (their
# keys under their PINs), logs everybody in, and walks a request through the upward route
# (countersigning included) — every decision signed with the actor's own certificate — seals it
# over the organisation's name and the date, sends, receives, verifies and archives it, and says
# where the sealed PDF, the reports and the evidence are.  Then the sealed PDF is judged once more
# by `yinxin seal verify`, `qpdf --check` and poppler, the signed decisions by `yinxin doc log
# --verify` and by the evidence bundle's verify.sh (OpenSSL alone, in a clean environment).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${YINXIN_VENV:-$REPO/.venv}
bash "$REPO/scripts/bootstrap.sh"
Y="$VENV/bin/yinxin"

DEMO_HOME=$(mktemp -d "${TMPDIR:-/tmp}/yinxin-demo.XXXXXX")
"$Y" demo --home "$DEMO_HOME" "$@"
SEALED="$DEMO_HOME/demo/sealed.pdf"
EVIDENCE="$DEMO_HOME/demo/evidence"
echo
echo "== yinxin seal verify"
"$Y" --home "$DEMO_HOME" seal verify "$SEALED"
echo "== qpdf --check"
qpdf --check "$SEALED" | tail -n 1
echo "== poppler: page 1 rendered to $DEMO_HOME/demo/page-1.png"
pdftoppm -png -r 80 -f 1 -l 1 "$SEALED" "$DEMO_HOME/demo/page"
echo "== audit log"
"$Y" --home "$DEMO_HOME" audit verify
echo "== signed decisions: yinxin doc log 1 --verify"
"$Y" --home "$DEMO_HOME" doc log 1 --verify | tail -n 1
echo "== the evidence, checked with OpenSSL alone: $EVIDENCE/verify.sh"
env -i PATH=/usr/bin:/bin sh "$EVIDENCE/verify.sh" | tail -n 2
