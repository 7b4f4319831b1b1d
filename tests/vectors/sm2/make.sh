#!/usr/bin/env bash
# How the OpenSSL-made SM2 vectors in this directory were produced (OpenSSL 3.0).
# Not run by the tests: the files are fixed so that every run checks the same bytes.
# Re-running makes a new key and new signatures (SM2 signatures are randomised).
set -euo pipefail
cd "$(dirname "$0")"
openssl genpkey -algorithm SM2 -out openssl_sm2.pem
openssl pkey -in openssl_sm2.pem -pubout -out openssl_sm2.pub.pem
printf 'correct horse battery staple\n' > openssl_sm2_aes256.password
openssl pkcs8 -topk8 -v2 aes-256-cbc -in openssl_sm2.pem -passout file:openssl_sm2_aes256.password \
    -out openssl_sm2_aes256.pem
printf '印信 yinxin: an SM2 test message made with OpenSSL.\n' > message.txt
printf 'alice@yinxin.example' > custom_id.txt
sign() {  # sign OUT [pkeyopt]
    local out=$1; shift
    openssl pkeyutl -sign -rawin -digest sm3 -inkey openssl_sm2.pem "$@" -in message.txt -out "$out"
}
sign message.sig.default_id.der -pkeyopt distid:1234567812345678
sign message.sig.empty_id.der                       # OpenSSL's own default: the empty ID
sign message.sig.custom_id.der -pkeyopt "distid:$(cat custom_id.txt)"
