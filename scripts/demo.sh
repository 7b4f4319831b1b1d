#!/usr/bin/env bash
# The main job, end to end, in a fresh temporary yinxin home.
#   bash scripts/demo.sh
# Runs `yinxin demo` once that command exists; until then it walks through the key layer:
# encrypted keys of every algorithm, inspect, sign, verify — SM2 also judged by OpenSSL,
# with the GM/T default ID, a custom ID and the empty ID — a tampered signature, and doctor.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${YINXIN_VENV:-$REPO/.venv}
bash "$REPO/scripts/bootstrap.sh"
Y="$VENV/bin/yinxin"

if "$Y" demo --help >/dev/null 2>&1; then
    exec "$Y" demo --home "$(mktemp -d)" "$@"
fi

DEMO_HOME=$(mktemp -d "${TMPDIR:-/tmp}/yinxin-demo.XXXXXX")
export YINXIN_HOME=$DEMO_HOME
unset YINXIN_PASSWORD YINXIN_SM2_BACKEND
W=$DEMO_HOME/keys
mkdir -p "$W"
step() { printf '\n== %s\n' "$*"; }
run() { printf '$'; printf ' %q' "$@"; printf '\n'; "$@"; }

umask 077
printf 'demo: 印信 key password\n' > "$W/password"
printf '关于开展电子印章试点工作的通知 — demo document\n' > "$W/document.txt"

for alg in rsa2048 rsa3072 ecdsa-p256 ecdsa-p384 sm2; do
    step "$alg: generate (encrypted), inspect, sign, verify"
    run "$Y" key generate --algorithm "$alg" --out "$W/$alg.key.pem" --password-file "$W/password" \
        --pub-out "$W/$alg.pub.pem"
    run "$Y" key inspect "$W/$alg.key.pem" --password-file "$W/password"
    run "$Y" key sign --key "$W/$alg.key.pem" --password-file "$W/password" \
        --in "$W/document.txt" --out "$W/$alg.sig"
    run "$Y" key verify --key "$W/$alg.pub.pem" --in "$W/document.txt" --sig "$W/$alg.sig"
done

step "sm2: GmSSL-format key file (PBKDF2-HMAC-SM3 + SM4-CBC)"
run "$Y" key generate --algorithm sm2 --scheme sm4 --out "$W/sm2-gmssl.key.pem" \
    --password-file "$W/password"
run "$Y" key inspect "$W/sm2-gmssl.key.pem" --password-file "$W/password"

step "sm2: OpenSSL opens our encrypted key file"
run openssl pkey -in "$W/sm2.key.pem" -passin "file:$W/password" -pubout

step "sm2: OpenSSL verifies our signatures — default ID, custom ID, empty ID"
run "$Y" key sign --key "$W/sm2.key.pem" --password-file "$W/password" --distid "seal-office@example.gov.cn" \
    --in "$W/document.txt" --out "$W/sm2.custom-id.sig"
run "$Y" key sign --key "$W/sm2.key.pem" --password-file "$W/password" --distid '' \
    --in "$W/document.txt" --out "$W/sm2.empty-id.sig"
for pair in "sm2.sig:1234567812345678" "sm2.custom-id.sig:seal-office@example.gov.cn" "sm2.empty-id.sig:"; do
    sig=${pair%%:*} id=${pair#*:}
    run openssl pkeyutl -verify -pubin -inkey "$W/sm2.pub.pem" -rawin -digest sm3 \
        -pkeyopt "distid:$id" -in "$W/document.txt" -sigfile "$W/$sig"
done

step "sm2: we verify OpenSSL's signature"
openssl pkey -in "$W/sm2.key.pem" -passin "file:$W/password" -out "$W/sm2.plain.tmp"
run openssl pkeyutl -sign -rawin -digest sm3 -inkey "$W/sm2.plain.tmp" \
    -pkeyopt distid:1234567812345678 -in "$W/document.txt" -out "$W/sm2.openssl.sig"
rm -f "$W/sm2.plain.tmp"
run "$Y" key verify --key "$W/sm2.pub.pem" --in "$W/document.txt" --sig "$W/sm2.openssl.sig"

step "a tampered document does not verify (exit 1)"
cp "$W/document.txt" "$W/tampered.txt"
printf 'one more line\n' >> "$W/tampered.txt"
set +e
"$Y" key verify --key "$W/sm2.pub.pem" --in "$W/tampered.txt" --sig "$W/sm2.sig"
rc=$?
set -e
echo "exit code: $rc"
[ "$rc" -eq 1 ] || { echo "demo: expected exit 1 for a tampered document" >&2; exit 1; }

step "doctor"
run "$Y" doctor

step "done"
echo "everything is in $DEMO_HOME"
