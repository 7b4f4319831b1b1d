#!/usr/bin/env bash
# How the OpenSSL-made key-file vectors in this directory were produced (OpenSSL 3.0).
# Not run by the tests (they check these fixed files); re-running makes new keys.
# The yinxin-made files (yinxin_*) come from `yinxin key generate`, see README.txt.
set -euo pipefail
cd "$(dirname "$0")"
pw() { printf '%s\n' "$2" > "$1.password"; }

# SM2, GmSSL scheme, built with OpenSSL tools only
openssl genpkey -algorithm SM2 -out sm2-src.tmp
src=sm2-src.tmp
pw sm2_sm4_pbes2 '印信-sm4-口令'
bash make_sm2_sm4_pbes2.sh "$src" sm2_sm4_pbes2.password sm2_sm4_pbes2.pem 10000
openssl pkey -in "$src" -pubout -out sm2_sm4_pbes2.pub.pem
rm -f "$src"

# RSA / ECDSA, PKCS#8 PBES2 AES-256-CBC as OpenSSL writes it
for alg in rsa2048 ecdsa-p256 ecdsa-p384; do
    case $alg in
        rsa2048) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out plain.tmp ;;
        ecdsa-p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out plain.tmp ;;
        ecdsa-p384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out plain.tmp ;;
    esac
    pw "${alg}_openssl_aes256" "pw-$alg"
    openssl pkcs8 -topk8 -v2 aes-256-cbc -in plain.tmp -passout "file:${alg}_openssl_aes256.password" \
        -out "${alg}_openssl_aes256.pem"
    openssl pkey -in plain.tmp -pubout -out "${alg}_openssl_aes256.pub.pem"
    # PKCS#12 with a self-signed certificate (RSA and ECDSA P-256)
    if [ "$alg" != ecdsa-p384 ]; then
        openssl req -new -x509 -key plain.tmp -subj "/CN=yinxin test $alg" -days 3650 -out "${alg}_p12.cert.pem"
        pw "${alg}_p12" "p12-$alg"
        openssl pkcs12 -export -inkey plain.tmp -in "${alg}_p12.cert.pem" -name "yinxin $alg" \
            -passout "file:${alg}_p12.password" -out "${alg}_p12.p12"
    fi
    rm -f plain.tmp
done

# Traditional ("Proc-Type: 4,ENCRYPTED") RSA PEM, the pre-PKCS#8 format
openssl genrsa -out plain.tmp 2048 2>/dev/null
pw rsa2048_legacy_pem 'pw-legacy'
openssl rsa -in plain.tmp -traditional -aes256 -passout file:rsa2048_legacy_pem.password \
    -out rsa2048_legacy_pem.pem 2>/dev/null
openssl pkey -in plain.tmp -pubout -out rsa2048_legacy_pem.pub.pem
rm -f plain.tmp
