#!/usr/bin/env bash
# A throw-away PostgreSQL cluster on 127.0.0.1 for tests and benchmarks.
#
#   scripts/pg.sh start          start a cluster on a free port; prints its URL on stdout
#                                (postgresql+psycopg://postgres@127.0.0.1:PORT/yinxin)
#   scripts/pg.sh env            the same, printed as shell lines to eval:
#                                  export YINXIN_TEST_PG_URL=…  export YINXIN_TEST_PG_DIR=…
#   scripts/pg.sh stop DIR|URL   stop that cluster and delete its directory
#   scripts/pg.sh run -- CMD…    start, run CMD with YINXIN_TEST_PG_URL exported, stop (always);
#                                exits with CMD's code
#
# Installs Debian's `postgresql` when its server binaries are missing (one apt-get update).
# The cluster lives in $TMPDIR/yinxin-pg-PORT (trust authentication, reachable only on
# 127.0.0.1 and a socket inside that directory); as root it runs as the `postgres` user,
# since PostgreSQL refuses to run as root.  fsync stays on: crash tests rely on it.
set -euo pipefail

say() { echo "pg.sh: $*" >&2; }
TMP=${TMPDIR:-/tmp}

pg_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

ensure_installed() {
    pg_bindir >/dev/null && return 0
    if [ "$(id -u)" -ne 0 ]; then
        say "PostgreSQL is not installed and this is not root: apt-get install postgresql first"
        exit 1
    fi
    say "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
    # the package's own cluster is not ours: leave it stopped
    command -v pg_ctlcluster >/dev/null 2>&1 && { pg_lsclusters -h 2>/dev/null | while read -r ver name _; do
        pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done; }
    pg_bindir >/dev/null || { say "postgresql installed but initdb/pg_ctl not found"; exit 1; }
}

free_port() {
    python3 - <<'EOF'
import socket
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

as_owner() {  # run a server command as the cluster's owner
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    ensure_installed
    local bin port dir tries=0
    bin=$(pg_bindir)
    while :; do
        port=$(free_port)
        dir="$TMP/yinxin-pg-$port"
        mkdir "$dir" 2>/dev/null && break
        tries=$((tries + 1)); [ $tries -lt 20 ] || { say "no free directory for a cluster"; exit 1; }
    done
    chmod 700 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if ! as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
            >"$dir/initdb.log" 2>&1 &&
       ! as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --no-locale \
            >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1
    fi
    # max_connections: several test processes, each with a small pool; a throw-away cluster
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/server.log" \
            -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=200" \
            start >/dev/null 2>&1; then
        say "the server did not start:"; cat "$dir/server.log" >&2; rm -rf "$dir"; exit 1
    fi
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres yinxin
    echo "$bin" >"$dir/bindir"
    URL="postgresql+psycopg://postgres@127.0.0.1:$port/yinxin"
    DIR=$dir
}

stop() {
    local target=${1:?"pg.sh stop DIR|URL"} dir
    if [ -d "$target" ]; then
        dir=$target
    else  # a URL: the port names the directory
        local port=${target##*:}; port=${port%%/*}
        dir="$TMP/yinxin-pg-$port"
    fi
    [ -d "$dir/data" ] || { say "no cluster in $dir"; return 1; }
    local bin
    bin=$(cat "$dir/bindir" 2>/dev/null || pg_bindir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start)
        start; echo "$URL"; say "cluster in $DIR; stop with: scripts/pg.sh stop $DIR" ;;
    env)
        start; printf 'export YINXIN_TEST_PG_URL=%q\nexport YINXIN_TEST_PG_DIR=%q\n' "$URL" "$DIR" ;;
    stop)
        stop "${2:-}" ;;
    run)
        shift; [ "${1:-}" = "--" ] && shift
        [ $# -gt 0 ] || { say "pg.sh run -- COMMAND…"; exit 2; }
        start
        trap 'stop "$DIR"' EXIT
        trap 'exit 130' INT TERM
        say "PostgreSQL for this run: $URL"
        set +e
        YINXIN_TEST_PG_URL=$URL YINXIN_TEST_PG_DIR=$DIR "$@"
        exit $? ;;
    *)
        sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
