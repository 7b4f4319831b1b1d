"""An independent GB/T 38540 checker for sealed OFDs, written without yinxin's code.

The package is read with Python's zipfile and xml.etree; every cryptographic judgement is
OpenSSL's command line:

* `openssl dgst -sm3 -binary` for each Reference's CheckValue and for dataHash (SM3 of the
  exact Signature.xml bytes);
* `openssl asn1parse` to find the elements of SignedValue.dat, and `-strparse OFFSET -out` to
  cut TBS_Sign, the SES_Seal, SES_SealInfo, the certificates and the DER signatures out;
* `openssl x509 -pubkey` for the keys, and `openssl pkeyutl -verify -rawin -digest sm3
  -pkeyopt distid:1234567812345678` for the signer's signature over TBS_Sign and the seal
  maker's over SES_SealInfo.

`check_ofd(path, workdir)` returns one dict per signature listed in Signatures.xml.
"""
from __future__ import annotations

import base64
import posixpath
import re
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

DISTID = "1234567812345678"
NS = "{http://www.ofdspec.org/2016}"
_LINE = re.compile(r"^\s*(\d+):d=(\d+)\s+hl=\s*(\d+)\s+l=\s*(\d+)\s+(prim|cons):\s+(\S[^:]*?)\s*(?::(.*))?$")


def _openssl(*args: str | Path, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["openssl", *map(str, args)], input=input, capture_output=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))}: {proc.stderr.decode(errors='replace')}")
    return proc


def sm3(path: Path) -> bytes:
    return _openssl("dgst", "-sm3", "-binary", path).stdout


def elements(der: Path) -> list[dict]:
    """The top-level children (depth 1) of a DER file, as `openssl asn1parse` lists them."""
    out = _openssl("asn1parse", "-inform", "DER", "-in", der).stdout.decode("utf-8", "replace")
    children = []
    for line in out.splitlines():
        m = _LINE.match(line)
        if m and m.group(2) == "1":
            children.append({"offset": int(m.group(1)), "hl": int(m.group(3)), "len": int(m.group(4)),
                             "type": m.group(6).strip()})
    return children


def cut(der: Path, offset: int, out: Path) -> Path:
    """`openssl asn1parse -strparse OFFSET -out`: the element at OFFSET (a constructed one whole,
    an OCTET/BIT STRING's content parsed as DER)."""
    _openssl("asn1parse", "-inform", "DER", "-in", der, "-strparse", str(offset), "-noout", "-out", out)
    return out


def bit_string_bytes(der: Path, element: dict) -> bytes:
    data = der.read_bytes()
    start = element["offset"] + element["hl"]
    return data[start + 1:start + element["len"]]          # after the unused-bits octet


def der(tag: int, content: bytes) -> bytes:
    """One DER element (tag, definite length, content): for tests that rebuild a SignedValue."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def pubkey(cert_der: Path, out: Path) -> Path:
    _openssl("x509", "-inform", "DER", "-in", cert_der, "-noout", "-pubkey", "-out", out)
    return out


def sm2_verify(pub: Path, data: Path, sig: Path, distid: str = DISTID) -> bool:
    proc = _openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
                    "-pkeyopt", f"distid:{distid}", "-in", data, "-sigfile", sig, check=False)
    return b"Signature Verified Successfully" in proc.stdout


def _resolve(ref: str, base: str) -> str:
    ref = ref.strip()
    if ref.startswith("/"):
        return ref.lstrip("/")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(base), ref))
    return joined


def check_ofd(path: Path, workdir: Path, *, distid: str = DISTID) -> list[dict]:
    workdir.mkdir(parents=True, exist_ok=True)
    results = []
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())

        def read(name: str) -> bytes:
            return z.read(name)

        ofd = ET.fromstring(read("OFD.xml"))
        body = ofd.find(f"{NS}DocBody")
        sig_list = _resolve(body.find(f"{NS}Signatures").text, "OFD.xml")
        listing = ET.fromstring(read(sig_list))
        for n, entry in enumerate(listing.findall(f"{NS}Signature")):
            d = workdir / f"sig{n}"
            d.mkdir(exist_ok=True)
            sig_path = _resolve(entry.get("BaseLoc"), sig_list)
            if sig_path not in names:
                sig_path = posixpath.join(posixpath.dirname(sig_list), entry.get("BaseLoc").lstrip("/"))
            sig_xml = read(sig_path)
            (d / "Signature.xml").write_bytes(sig_xml)
            root = ET.fromstring(sig_xml)
            info = root.find(f"{NS}SignedInfo")
            refs = info.find(f"{NS}References")
            method = refs.get("CheckMethod")
            bad, referenced = [], []
            for i, ref in enumerate(refs.findall(f"{NS}Reference")):
                name = _resolve(ref.get("FileRef"), sig_path)
                referenced.append(name)
                f = d / f"ref{i}"
                f.write_bytes(read(name) if name in names else b"")
                if name not in names or sm3(f) != base64.b64decode(ref.find(f"{NS}CheckValue").text):
                    bad.append(name)
            value = d / "SignedValue.dat"
            value.write_bytes(read(_resolve(root.find(f"{NS}SignedValue").text, sig_path)))
            top = elements(value)
            tbs = cut(value, top[0]["offset"], d / "tbs.der")
            cut(value, top[1]["offset"], d / "signer.der")
            signer_sig = cut(value, top[3]["offset"], d / "signer-sig.der")
            tbs_parts = elements(tbs)
            seal = cut(tbs, tbs_parts[1]["offset"], d / "seal.der")
            data_hash = bit_string_bytes(tbs, tbs_parts[3])
            seal_parts = elements(seal)
            info_der = cut(seal, seal_parts[0]["offset"], d / "seal-info.der")
            cut(seal, seal_parts[1]["offset"], d / "maker.der")
            maker_sig = cut(seal, seal_parts[3]["offset"], d / "maker-sig.der")
            seal_file = info.find(f"{NS}Seal/{NS}BaseLoc")
            results.append({
                "id": entry.get("ID"), "signature": sig_path, "check_method": method,
                "references": referenced, "bad_references": bad,
                "unreferenced": sorted(names - set(referenced) - {x for x in names if x.endswith("/")}),
                "data_hash_ok": data_hash == sm3(d / "Signature.xml"),
                "signer_ok": sm2_verify(pubkey(d / "signer.der", d / "signer.pem"), tbs, signer_sig, distid),
                "maker_ok": sm2_verify(pubkey(d / "maker.der", d / "maker.pem"), info_der, maker_sig, distid),
                "seal_file_ok": seal_file is None or read(_resolve(seal_file.text, sig_path)) == seal.read_bytes(),
                "stamps": [dict(a.attrib) for a in info.findall(f"{NS}StampAnnot")],
                "tbs_version": tbs_parts[0]["type"],
            })
    return results
