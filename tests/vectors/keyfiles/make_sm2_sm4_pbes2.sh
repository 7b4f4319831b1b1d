#!/usr/bin/env bash
# Build a GmSSL-format encrypted SM2 key — PKCS#8 PBES2 with PBKDF2-HMAC-SM3 and SM4-CBC —
# with the OpenSSL command line only (OpenSSL 3 cannot write this scheme itself):
#   usage: make_sm2_sm4_pbes2.sh KEY.pem PASSWORD_FILE OUT.pem [ITERATIONS]
# KEY.pem is any private key OpenSSL reads; the password is the first line of PASSWORD_FILE.
# Used by tests/test_keyfiles_openssl.py at test time and to make sm2_sm4_pbes2.pem here.
set -euo pipefail
key=$1 pwfile=$2 out=$3 iter=${4:-10000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
password=$(head -n 1 "$pwfile")
salt=$(openssl rand -hex 16)
iv=$(openssl rand -hex 16)
openssl pkcs8 -topk8 -nocrypt -in "$key" -outform DER -out "$work/plain.p8"
# PBKDF2-HMAC-SM3, 16-byte key; `openssl kdf` prints it as AA:BB:…
dk=$(openssl kdf -keylen 16 -kdfopt digest:SM3 -kdfopt "pass:$password" -kdfopt "hexsalt:$salt" \
        -kdfopt "iter:$iter" PBKDF2 | tr -d ':\n')
openssl enc -sm4-cbc -K "$dk" -iv "$iv" -in "$work/plain.p8" -out "$work/body.bin"
body=$(od -An -v -tx1 "$work/body.bin" | tr -d ' \n')
cat > "$work/epki.cnf" <<CNF
asn1 = SEQUENCE:epki
[epki]
algorithm = SEQUENCE:pbes2_alg
data = FORMAT:HEX,OCTETSTRING:$body
[pbes2_alg]
oid = OID:1.2.840.113549.1.5.13
params = SEQUENCE:pbes2
[pbes2]
kdf = SEQUENCE:kdf_alg
enc = SEQUENCE:enc_alg
[kdf_alg]
oid = OID:1.2.840.113549.1.5.12
params = SEQUENCE:pbkdf2
[pbkdf2]
salt = FORMAT:HEX,OCTETSTRING:$salt
iterations = INTEGER:$iter
keylength = INTEGER:16
prf = SEQUENCE:hmac_sm3
[hmac_sm3]
oid = OID:1.2.156.10197.1.401.2
params = NULL
[enc_alg]
oid = OID:1.2.156.10197.1.104.2
iv = FORMAT:HEX,OCTETSTRING:$iv
CNF
openssl asn1parse -genconf "$work/epki.cnf" -out "$work/epki.der" -noout
{
    echo "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    openssl base64 -in "$work/epki.der"
    echo "-----END ENCRYPTED PRIVATE KEY-----"
} > "$out"
