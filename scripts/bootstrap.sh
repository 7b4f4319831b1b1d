#!/usr/bin/env bash
# Make this machine ready for yinxin: Debian packages the tests and the demo use, a Python
# virtual environment, the locked dependencies (requirements/lock.txt) and the package installed in it
# (editable).
# Idempotent: a second run installs nothing and takes a second or two.
#
#   YINXIN_VENV    the virtual environment to create/use (default: .venv in the repository)
#   YINXIN_PYTHON  the Python (>= 3.11) to create it with (default: python3, python3.13, …)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${YINXIN_VENV:-$REPO/.venv}
say() { echo "bootstrap: $*" >&2; }

# ------------------------------------------------------------------ Debian packages
# package -> how to tell it is there without dpkg (tools may come from elsewhere)
declare -A PROBE=(
    [openssl]="command -v openssl"
    [poppler-utils]="command -v pdfsig && command -v pdftoppm"
    [qpdf]="command -v qpdf"
    [fontconfig]="command -v fc-match && command -v fc-list"
    [fonts-noto-cjk]="fc-list :lang=zh-cn file | grep -q ."
    [postgresql]="command -v psql && { command -v postgres || ls /usr/lib/postgresql/*/bin/postgres; }"
    [wrk]="command -v wrk"
    [librsvg2-bin]="command -v rsvg-convert"
    [libbotan-2-19]="ls /usr/lib/*/libbotan-2.so.19 || ls /usr/lib/libbotan-2.so.19"
    [sqlite3]="command -v sqlite3"
    [faketime]="command -v faketime"
    [chromium]="command -v chromium"
    [chromium-driver]="command -v chromedriver"
)
ORDER=(openssl poppler-utils qpdf fontconfig fonts-noto-cjk postgresql wrk librsvg2-bin libbotan-2-19
       sqlite3 faketime chromium chromium-driver)

installed() {  # installed PACKAGE
    if command -v dpkg-query >/dev/null 2>&1 &&
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; then
        return 0
    fi
    bash -c "${PROBE[$1]}" >/dev/null 2>&1
}

missing=()
for pkg in "${ORDER[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done

pick_python() {
    local candidates=("${YINXIN_PYTHON:-}" python3 python3.13 python3.12 python3.11)
    for py in "${candidates[@]}"; do
        [ -n "$py" ] || continue
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    PYTHON=$(pick_python || true)
    if [ -z "$PYTHON" ]; then
        missing+=(python3)
    elif ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing+=(python3-venv)
    fi
fi

if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        say "not a Debian/Ubuntu system: please install ${missing[*]} yourself; continuing"
    else
        SUDO=()
        if [ "$(id -u)" -ne 0 ]; then
            if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
                SUDO=(sudo -n)
            else
                SUDO=(skip)
            fi
        fi
        if [ "${SUDO[*]:-}" = skip ]; then
            say "not root (and no password-less sudo): cannot install ${missing[*]}"
            say "ask an administrator for: apt-get install ${missing[*]}; continuing without them"
        else
            say "installing Debian packages: ${missing[*]}"
            export DEBIAN_FRONTEND=noninteractive
            "${SUDO[@]}" apt-get update -qq
            "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        fi
    fi
fi

# ------------------------------------------------------------------ virtual environment
if [ ! -x "$VENV/bin/python" ]; then
    PYTHON=$(pick_python) || { say "no Python >= 3.11 found (set YINXIN_PYTHON)"; exit 1; }
    say "creating the virtual environment $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi

# ------------------------------------------------------------------ the package
# Exactly the versions the suite was run with: requirements/lock.txt (hashes checked), then yinxin
# itself without dependencies.  YINXIN_LATEST=1 (scripts/test.sh --latest) instead takes the newest
# versions pyproject.toml allows, as someone embedding the library would get them.
LOCK="$REPO/requirements/lock.txt"
STAMP="$VENV/.yinxin-installed.sha256"
if [ "${YINXIN_LATEST:-}" = 1 ]; then
    want="latest:$(date +%F):$(sha256sum < "$REPO/pyproject.toml" | cut -d' ' -f1)"
else
    want="lock:$(cat "$REPO/pyproject.toml" "$LOCK" | sha256sum | cut -d' ' -f1)"
fi
have=$(cat "$STAMP" 2>/dev/null || true)
current() {  # the venv's yinxin is this checkout's, and its console script exists
    [ -x "$VENV/bin/yinxin" ] &&
        "$VENV/bin/python" - "$REPO" <<'PY' >/dev/null 2>&1
import pathlib, sys
import cli, pki, pytest, hypothesis  # the package and its test extras
sys.exit(pathlib.Path(pki.__file__).resolve().parent.parent != pathlib.Path(sys.argv[1]).resolve())
PY
}
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
if [ "$want" != "$have" ] || ! current; then
    if [ "${YINXIN_LATEST:-}" = 1 ]; then
        say "installing yinxin with the newest dependencies pyproject.toml allows into $VENV"
        "${PIP[@]}" --upgrade --upgrade-strategy eager -e "$REPO[test]"
    else
        say "installing the locked dependencies (requirements/lock.txt) and yinxin into $VENV"
        "${PIP[@]}" --require-hashes --no-deps -r "$LOCK"
        "${PIP[@]}" --no-deps -e "$REPO"
        "$VENV/bin/python" -m pip check >/dev/null || { "$VENV/bin/python" -m pip check >&2;
            say "the installed packages do not fit together (see above)"; exit 1; }
    fi
    echo "$want" > "$STAMP"
fi
# ------------------------------------------------------------------ browser-side test readers
# ofd.js (an independent OFD reader in JavaScript) for tests/test_ofd_browser.py, pinned by
# tests/js/package-lock.json and installed with npm ci into tests/js/node_modules (never at test time)
JS="$REPO/tests/js"
if [ -f "$JS/package-lock.json" ]; then
    JS_STAMP="$JS/node_modules/.yinxin-lock.sha256"
    js_want=$(sha256sum < "$JS/package-lock.json" | cut -d' ' -f1)
    if [ "$(cat "$JS_STAMP" 2>/dev/null || true)" != "$js_want" ]; then
        if command -v npm >/dev/null 2>&1; then
            say "installing the test's JavaScript readers (tests/js, npm ci)"
            (cd "$JS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) &&
                echo "$js_want" > "$JS_STAMP" ||
                say "npm ci in tests/js failed: the ofd.js browser test will fail"
        else
            say "npm is missing: the ofd.js browser test needs it (apt-get install npm)"
        fi
    fi
fi
say "ready: $VENV ($("$VENV/bin/yinxin" --version))"
