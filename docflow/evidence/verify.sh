#!/bin/sh
# Checks the signed decisions of an official document with OpenSSL alone (and sha256sum):
#   sh verify.sh        (in this directory; exit 0 and "ALL OK" only if every check holds)
#
# For every act N: act-N.json are the exact bytes that were signed (canonical JSON: UTF-8, keys
# sorted, no insignificant whitespace), act-N.sig the DER signature, act-N.crt the signer's
# certificate.  Checked: the signature over act-N.json; that the certificate is the one the record
# names and was issued by its CA (ca-NAME.pem, each CA up to the trust anchor); that it was valid
# and not revoked or held at the time of the act (the CA's CRL, crl-NAME.der, itself signed by the
# CA and issued after the act); that act-N.json names the SHA-256 of act-(N-1).json; that the
# version of the document it acted on (version-V.pdf) has the SHA-256 and SM3 the record states.
# Compare the trust anchor's fingerprint printed at the end with the one you trust.
# Uses: openssl (3.x: SM2/SM3), sha256sum, and POSIX sh with cat, cut, tr, mktemp, rm.
set -u
cd "$(dirname "$0")" || exit 2
TMP=$(mktemp -d) || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM
FAILED=0

say_bad() { echo "act $1: BAD: $2"; FAILED=1; }

# field NAME FILE: the string value of the first "NAME":"…" in the canonical JSON
field() {
    c=$(cat "$2")
    v=${c#*\"$1\":\"}
    [ "$v" = "$c" ] && return 1
    printf '%s' "${v%%\"*}"
}

# number NAME FILE: the value of the first "NAME":123
number() {
    c=$(cat "$2")
    v=${c#*\"$1\":}
    [ "$v" = "$c" ] && return 1
    v=${v%%[,\}]*}
    case $v in ''|*[!0-9]*) return 1 ;; esac
    printf '%s' "$v"
}

month() {
    case $1 in
        Jan) echo 01 ;; Feb) echo 02 ;; Mar) echo 03 ;; Apr) echo 04 ;; May) echo 05 ;; Jun) echo 06 ;;
        Jul) echo 07 ;; Aug) echo 08 ;; Sep) echo 09 ;; Oct) echo 10 ;; Nov) echo 11 ;; Dec) echo 12 ;;
        *) echo 00 ;;
    esac
}

# stamp "May  8 10:00:00 2026 GMT" -> 20260508100000
stamp() {
    set -- $1
    d=$2
    [ ${#d} -eq 1 ] && d=0$d
    printf '%s%s%s%s' "$4" "$(month "$1")" "$d" "$(printf '%s' "$3" | tr -d :)"
}

# iso 2026-05-08T10:00:00Z -> 20260508100000
iso() { printf '%s' "$1" | tr -d 'TZ:-'; }

# sigcheck ALG DISTID PUBKEY DATA SIG
sigcheck() {
    case $1 in
        sm2)
            if [ -n "$2" ]; then
                openssl pkeyutl -verify -pubin -inkey "$3" -rawin -digest sm3 -pkeyopt "distid:$2" \
                    -in "$4" -sigfile "$5" >/dev/null 2>&1
            else
                openssl pkeyutl -verify -pubin -inkey "$3" -rawin -digest sm3 -in "$4" -sigfile "$5" >/dev/null 2>&1
            fi ;;
        ecdsa-p384) openssl dgst -sha384 -verify "$3" -signature "$5" "$4" >/dev/null 2>&1 ;;
        *) openssl dgst -sha256 -verify "$3" -signature "$5" "$4" >/dev/null 2>&1 ;;
    esac
}

# issued CERT CA: the certificate's signature is the CA's (SM2: with the CA's distinguishing ID)
issued() {
    if [ "$(ca_alg "$2")" = sm2 ] && [ -n "$(ca_distid "$2")" ]; then
        openssl verify -no_check_time -partial_chain -CAfile "ca-$2.pem" -vfyopt "distid:$(ca_distid "$2")" "$1" \
            >/dev/null 2>&1
    else
        openssl verify -no_check_time -partial_chain -CAfile "ca-$2.pem" "$1" >/dev/null 2>&1
    fi
}

# crl_ok CA WHEN: the CA's CRL is signed by the CA and was issued at or after WHEN (what is checked
# once per CA is kept in $TMP)
crl_ok() {
    crl=crl-$1.der
    [ -f "$crl" ] || { echo "no CRL of CA $1"; return 1; }
    if [ ! -f "$TMP/crl-$1.last" ]; then
        openssl x509 -in "ca-$1.pem" -noout -pubkey > "$TMP/ca.pub" || return 1
        if [ "$(ca_alg "$1")" = sm2 ]; then
            openssl asn1parse -inform DER -in "$crl" -strparse "$(crl_tbs "$1")" -noout -out "$TMP/tbs.der" >/dev/null &&
            openssl asn1parse -inform DER -in "$crl" -strparse "$(crl_sig "$1")" -noout -out "$TMP/crlsig.der" \
                >/dev/null &&
            sigcheck sm2 "$(ca_distid "$1")" "$TMP/ca.pub" "$TMP/tbs.der" "$TMP/crlsig.der" ||
                { echo "the CRL of CA $1 is not signed by CA $1"; return 1; }
        else
            openssl crl -inform DER -in "$crl" -CAfile "ca-$1.pem" -noout >/dev/null 2>&1 ||
                { echo "the CRL of CA $1 is not signed by CA $1"; return 1; }
        fi
        openssl crl -inform DER -in "$crl" -noout -text > "$TMP/crl-$1.txt" || return 1
        last=$(openssl crl -inform DER -in "$crl" -noout -lastupdate) || return 1
        stamp "${last#lastUpdate=}" > "$TMP/crl-$1.last"
    fi
    [ "$(cat "$TMP/crl-$1.last")" -ge "$2" ] || { echo "the CRL of CA $1 is older than the act"; return 1; }
}

# not_revoked SERIAL CA WHEN: the serial is not on the CA's CRL with a date at or before WHEN
not_revoked() {
    hit=
    while IFS= read -r line; do
        if [ -n "$hit" ]; then
            case $line in
                *"Revocation Date: "*)
                    when=$(stamp "${line#*Revocation Date: }")
                    if [ "$when" -le "$3" ]; then
                        echo "certificate $1 was revoked or held by CA $2 before the act"
                        return 1
                    fi ;;
            esac
            hit=
        fi
        case $line in *"Serial Number: $1") hit=1 ;; esac
    done < "$TMP/crl-$2.txt"
    return 0
}

# valid_at CERT WHEN: notBefore <= WHEN <= notAfter
valid_at() {
    nb=$(openssl x509 -in "$1" -noout -startdate) || return 1
    na=$(openssl x509 -in "$1" -noout -enddate) || return 1
    nb=$(stamp "${nb#notBefore=}")
    na=$(stamp "${na#notAfter=}")
    [ "$nb" -le "$2" ] && [ "$2" -le "$na" ]
}

# chain_ok CA WHEN: the CA's certificate up to the trust anchor, each valid and unrevoked then
chain_ok() {
    ca=$1
    while [ -n "$(ca_parent "$ca")" ]; do
        parent=$(ca_parent "$ca")
        if [ ! -f "$TMP/issued-$ca" ]; then
            issued "ca-$ca.pem" "$parent" || { echo "the certificate of CA $ca is not issued by CA $parent"; return 1; }
            : > "$TMP/issued-$ca"
        fi
        valid_at "ca-$ca.pem" "$2" || { echo "the certificate of CA $ca was not valid at the act"; return 1; }
        crl_ok "$parent" "$2" || return 1
        serial=$(openssl x509 -in "ca-$ca.pem" -noout -serial) || return 1
        not_revoked "${serial#serial=}" "$parent" "$2" || return 1
        ca=$parent
    done
}

PREV=
# check_act N ALG CA
check_act() {
    n=$1 alg=$2 ca=$3 rec=act-$1.json
    for f in "$rec" "act-$n.sig" "act-$n.crt" "ca-$ca.pem"; do
        [ -f "$f" ] || { say_bad "$n" "$f is missing"; PREV=; return; }
    done
    digest=$(sha256sum "$rec" | cut -d' ' -f1)
    prev=$(field prev "$rec")
    [ "$prev" = "$PREV" ] || { say_bad "$n" "it does not follow the previous act (prev digest differs)"; PREV=$digest; return; }
    PREV=$digest
    openssl x509 -in "act-$n.crt" -noout -pubkey > "$TMP/signer.pub" 2>/dev/null ||
        { say_bad "$n" "act-$n.crt is not a certificate"; return; }
    sigcheck "$alg" "$(ca_distid "$ca")" "$TMP/signer.pub" "$rec" "act-$n.sig" ||
        { say_bad "$n" "the signature does not verify over act-$n.json"; return; }
    serial=$(openssl x509 -in "act-$n.crt" -noout -serial)
    serial=${serial#serial=}
    [ "$(field serial "$rec")" = "$serial" ] && [ "$(field ca "$rec")" = "$ca" ] ||
        { say_bad "$n" "the record names another certificate than act-$n.crt"; return; }
    issued "act-$n.crt" "$ca" || { say_bad "$n" "act-$n.crt is not issued by CA $ca"; return; }
    when=$(iso "$(field time "$rec")")
    valid_at "act-$n.crt" "$when" || { say_bad "$n" "the certificate was not valid at the time of the act"; return; }
    why=$(crl_ok "$ca" "$when") || { say_bad "$n" "$why"; return; }
    why=$(not_revoked "$serial" "$ca" "$when") || { say_bad "$n" "$why"; return; }
    why=$(chain_ok "$ca" "$when") || { say_bad "$n" "$why"; return; }
    version=$(number version "$rec") || version=
    if [ -n "$version" ]; then
        pdf=version-$version.pdf
        [ -f "$pdf" ] || { say_bad "$n" "$pdf is missing"; return; }
        [ "$(sha256sum "$pdf" | cut -d' ' -f1)" = "$(field sha256 "$rec")" ] ||
            { say_bad "$n" "$pdf is not the version the act names (SHA-256)"; return; }
        sm3=$(openssl dgst -sm3 -r "$pdf" | cut -d' ' -f1)
        [ "$sm3" = "$(field sm3 "$rec")" ] || { say_bad "$n" "$pdf is not the version the act names (SM3)"; return; }
    fi
    echo "act $n: OK  $(field action "$rec") by $(field actor "$rec") at $(field time "$rec")" \
         "(certificate $serial of CA $ca${version:+, version $version})"
}

# ---------------------------------------------------------------- this document's acts
@SETTINGS@

for anchor in $ANCHORS; do
    echo "trust anchor: ca-$anchor.pem, $(openssl x509 -in "ca-$anchor.pem" -noout -fingerprint -sha256)"
done
if [ "$FAILED" -eq 0 ]; then
    echo "ALL OK"
    exit 0
fi
echo "FAILED"
exit 1
