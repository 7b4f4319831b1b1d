"""Make the OFD vectors of this directory with the OpenSSL command line and Python's zipfile
only (no yinxin code).  Run once from this directory:

    python make_vectors.py

* `v1-gmt0031.ofd` — a GM/T 0031-2014 ("version 1") seal on plain/ofdrw-layout-1-1.ofd: the
  SES_Seal {SES_SealInfo with UTCTime dates, SES_SignInfo {cert, alg, signData}} signed by its
  maker over SEQUENCE{SES_SealInfo, cert, signatureAlgorithm}; the SES_Signature {TBS_Sign
  {version 1, eseal, timeInfo as a BIT STRING, dataHash, propertyInfo, cert, alg}, signature};
  References with CheckMethod "sm3" (lower case), no Seal.esl.
* `v1-root.pem` — the self-signed root that issued the maker's and the signer's certificates
  (give it to `yinxin seal verify --trust` to make the chain reach a trusted root), and
  `v1-root.crl`, its CRL revoking nothing (`--crl`: revocation decided), and
  `v1-root-revoked.crl`, one revoking the signer's certificate.
* `v4-raw-rs.ofd` — the same document sealed by a v4 SES_Signature whose signature is stored as
  raw r ‖ s (64 octets) as one producer does, References with CheckMethod
  1.2.156.10197.1.401.2 (SM3 of Z ‖ file, Z from the signer's key and ID 1234567812345678).

Keys and certificates are made fresh each run: the files change, their meaning does not.
"""
from __future__ import annotations

import base64
import subprocess
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "plain" / "ofdrw-layout-1-1.ofd"
DISTID = "1234567812345678"
SM2 = ["-sm3", "-sigopt", f"distid:{DISTID}"]
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d494844520000000200000002080600000072b60d24000000144944415478da63bcc3c0b080"
    "8181818189010a0017920180bd3b5bec0000000049454e44ae426082")
SIGN_DIR = "Doc_0/Signs/Sign_0"
SIG_XML = f"{SIGN_DIR}/Signature.xml"


def openssl(*args: str, cwd: Path) -> bytes:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"openssl {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def pki(work: Path) -> None:
    openssl("genpkey", "-algorithm", "SM2", "-out", "root.key", cwd=work)
    openssl("req", "-x509", "-new", "-key", "root.key", *SM2, "-days", "7300", "-utf8", "-subj",
            "/C=CN/O=印信测试/CN=OpenSSL GMT0031 Root", "-set_serial", "1",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", "root.pem", cwd=work)
    (work / "leaf.ext").write_text("basicConstraints=critical,CA:FALSE\n"
                                   "keyUsage=critical,digitalSignature,nonRepudiation\n")
    for name, serial in (("maker", "2"), ("signer", "3")):
        openssl("genpkey", "-algorithm", "SM2", "-out", f"{name}.key", cwd=work)
        openssl("req", "-new", "-key", f"{name}.key", *SM2, "-utf8", "-subj", f"/C=CN/O=印信测试/CN=OpenSSL {name}",
                "-out", f"{name}.csr", cwd=work)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "root.pem", "-CAkey", "root.key", *SM2,
                "-vfyopt", f"distid:{DISTID}", "-days", "3650", "-set_serial", serial, "-extfile", "leaf.ext",
                "-outform", "DER", "-out", f"{name}.der", cwd=work)


def genconf(work: Path, name: str, text: str) -> bytes:
    (work / f"{name}.cnf").write_text(text)
    openssl("asn1parse", "-genconf", f"{name}.cnf", "-noout", "-out", f"{name}.der", cwd=work)
    return (work / f"{name}.der").read_bytes()


def sign(work: Path, key: str, data: bytes, name: str) -> bytes:
    (work / f"{name}.tbs").write_bytes(data)
    openssl("pkeyutl", "-sign", "-inkey", key, "-rawin", "-digest", "sm3", "-pkeyopt", f"distid:{DISTID}",
            "-in", f"{name}.tbs", "-out", f"{name}.sig", cwd=work)
    return (work / f"{name}.sig").read_bytes()


def sm3(work: Path, data: bytes, prefix: bytes = b"") -> bytes:
    (work / "hash.in").write_bytes(prefix + data)
    return openssl("dgst", "-sm3", "-binary", "hash.in", cwd=work)


def der_signature_to_raw(sig: bytes, work: Path) -> bytes:
    (work / "rs.der").write_bytes(sig)
    out = openssl("asn1parse", "-inform", "DER", "-in", "rs.der", cwd=work).decode()
    ints = [line.split(":")[-1].strip() for line in out.splitlines() if "INTEGER" in line]
    return b"".join(bytes.fromhex(v.rjust(64, "0")) for v in ints)


def z_value(work: Path) -> bytes:
    """Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA) of the signer's key (GM/T 0009)."""
    a = bytes.fromhex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC")
    b = bytes.fromhex("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93")
    gx = bytes.fromhex("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7")
    gy = bytes.fromhex("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")
    openssl("x509", "-inform", "DER", "-in", "signer.der", "-noout", "-pubkey", "-out", "signer.pem", cwd=work)
    text = openssl("pkey", "-pubin", "-in", "signer.pem", "-noout", "-text", cwd=work).decode()
    hexes = "".join(line.strip() for line in text.split("pub:")[1].split("ASN1")[0].splitlines()).replace(":", "")
    point = bytes.fromhex(hexes)[1:]
    entl = (len(DISTID) * 8).to_bytes(2, "big")
    return sm3(work, entl + DISTID.encode() + a + b + gx + gy + point)


def seal_info(work: Path, version: int) -> str:
    """The [info] sections of SES_SealInfo: v1 with UTCTime dates and no certListType, v4 with
    GeneralizedTime and certListType 1."""
    signer = (work / "signer.der").read_bytes().hex()
    if version == 1:
        esid, list_type, time, dates = "openssl-gmt0031-0001", "", "UTCTIME", ("260101080000Z", "360101080000Z")
    else:
        esid, list_type, time, dates = ("openssl-rawrs-0001", "certlisttype=INTEGER:1\n", "GENTIME",
                                        ("20260101080000Z", "20360101080000Z"))
    return (f"[info]\nheader=SEQUENCE:header\nesid=IA5STRING:{esid}\nproperty=SEQUENCE:property\n"
            f"picture=SEQUENCE:picture\n[header]\nid=IA5STRING:ES\nversion=INTEGER:{version}\nvid=IA5STRING:openssl\n"
            f"[property]\ntype=INTEGER:1\nname=FORMAT:UTF8,UTF8String:北京市测试局\n{list_type}"
            f"certlist=SEQUENCE:certlist\ncreate={time}:{dates[0]}\nstart={time}:{dates[0]}\nend={time}:{dates[1]}\n"
            f"[certlist]\nc1=FORMAT:HEX,OCTETSTRING:{signer}\n[picture]\ntype=IA5STRING:png\n"
            f"data=FORMAT:HEX,OCTETSTRING:{PNG.hex()}\nwidth=INTEGER:40\nheight=INTEGER:40\n")


def seal_v1(work: Path) -> bytes:
    """GM/T 0031: the maker signs SEQUENCE{info, cert, alg}; SESeal {info, SES_SignInfo}."""
    maker, info = (work / "maker.der").read_bytes().hex(), seal_info(work, 1)
    to_sign = genconf(work, "maker-tbs", f"asn1=SEQUENCE:tbs\n[tbs]\ninfo=SEQUENCE:info\n"
                                        f"cert=FORMAT:HEX,OCTETSTRING:{maker}\nalg=OID:1.2.156.10197.1.501\n{info}")
    sig = sign(work, "maker.key", to_sign, "maker").hex()
    return genconf(work, "seal", f"asn1=SEQUENCE:seal\n[seal]\ninfo=SEQUENCE:info\nsigninfo=SEQUENCE:signinfo\n"
                                 f"[signinfo]\ncert=FORMAT:HEX,OCTETSTRING:{maker}\nalg=OID:1.2.156.10197.1.501\n"
                                 f"sig=FORMAT:HEX,BITSTRING:{sig}\n{info}")


def seal_v4(work: Path) -> bytes:
    """GB/T 38540: the maker signs SES_SealInfo; SESeal {info, cert, alg, signedValue}."""
    maker, info = (work / "maker.der").read_bytes().hex(), seal_info(work, 4)
    sig = sign(work, "maker.key", genconf(work, "maker-tbs", f"asn1=SEQUENCE:info\n{info}"), "maker").hex()
    return genconf(work, "seal", f"asn1=SEQUENCE:seal\n[seal]\ninfo=SEQUENCE:info\n"
                                 f"cert=FORMAT:HEX,OCTETSTRING:{maker}\nalg=OID:1.2.156.10197.1.501\n"
                                 f"sig=FORMAT:HEX,BITSTRING:{sig}\n{info}")


def package(work: Path, out: Path, *, version: int) -> None:
    src = zipfile.ZipFile(SOURCE)
    files = {n: src.read(n) for n in src.namelist() if not n.endswith("/")}
    files["OFD.xml"] = files["OFD.xml"].replace(
        b"</ofd:DocRoot>", b"</ofd:DocRoot><ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures>")
    method = "sm3" if version == 1 else "1.2.156.10197.1.401.2"
    prefix = b"" if version == 1 else z_value(work)
    refs = "".join(f'<ofd:Reference FileRef="/{n}"><ofd:CheckValue>'
                   f'{base64.b64encode(sm3(work, data, prefix)).decode()}</ofd:CheckValue></ofd:Reference>'
                   for n, data in files.items())
    signature_xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Signature xmlns:ofd="http://www.ofdspec.org/2016">'
        '<ofd:SignedInfo><ofd:Provider ProviderName="openssl-vector" Company="yinxin tests" Version="1"/>'
        "<ofd:SignatureMethod>1.2.156.10197.1.501</ofd:SignatureMethod>"
        "<ofd:SignatureDateTime>2026-05-08 10:00:00</ofd:SignatureDateTime>"
        f'<ofd:References CheckMethod="{method}">{refs}</ofd:References>'
        '<ofd:StampAnnot ID="2" PageRef="1" Boundary="100 200 40 40"/></ofd:SignedInfo>'
        f"<ofd:SignedValue>/{SIGN_DIR}/SignedValue.dat</ofd:SignedValue></ofd:Signature>").encode()
    data_hash = sm3(work, signature_xml).hex()
    signer = (work / "signer.der").read_bytes().hex()
    seal = (seal_v1 if version == 1 else seal_v4)(work)
    if version == 1:
        tbs_body = (b"\x02\x01\x01" + seal + _der(0x03, b"\x00" + b"20260508100000Z") + _der(0x03, b"\x00" +
                    bytes.fromhex(data_hash)) + _der(0x16, f"/{SIG_XML}".encode()) +
                    _der(0x04, bytes.fromhex(signer)) + bytes.fromhex("06082a811ccf55018375"))
        tbs = _der(0x30, tbs_body)
        signature = sign(work, "signer.key", tbs, "signer")
        value = _der(0x30, tbs + _der(0x03, b"\x00" + signature))
    else:
        tbs_body = (b"\x02\x01\x04" + seal + _der(0x18, b"20260508100000Z") + _der(0x03, b"\x00" +
                    bytes.fromhex(data_hash)) + _der(0x16, f"/{SIG_XML}".encode()))
        tbs = _der(0x30, tbs_body)
        signature = der_signature_to_raw(sign(work, "signer.key", tbs, "signer"), work)
        value = _der(0x30, tbs + _der(0x04, bytes.fromhex(signer)) + bytes.fromhex("06082a811ccf55018375")
                     + _der(0x03, b"\x00" + signature))
    files[SIG_XML] = signature_xml
    files[f"{SIGN_DIR}/SignedValue.dat"] = value
    files["Doc_0/Signs/Signatures.xml"] = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Signatures xmlns:ofd="http://www.ofdspec.org/2016">'
        f'<ofd:MaxSignId>2</ofd:MaxSignId><ofd:Signature ID="1" BaseLoc="/{SIG_XML}"/></ofd:Signatures>').encode()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(2026, 5, 8, 10, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED)


def _der(tag: int, content: bytes) -> bytes:
    """A DER element (the vectors' own encoder: openssl's genconf cannot nest raw DER it did not make)."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pki(work)
        package(work, HERE / "v1-gmt0031.ofd", version=1)
        package(work, HERE / "v4-raw-rs.ofd", version=4)
        (HERE / "v1-root.pem").write_bytes((work / "root.pem").read_bytes())
        crls(work)


def crls(work: Path) -> None:
    (work / "ca.cnf").write_text("[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\n"
                                 "default_md=sm3\ndefault_crl_days=3650\n")
    (work / "index.txt").write_text("")
    (work / "crlnumber").write_text("01\n")
    crl = ["ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "root.key", "-cert", "root.pem", "-sigopt",
           f"distid:{DISTID}", "-outform", "DER"]
    openssl(*crl[:-2], "-out", "good.pem", cwd=work)
    openssl("crl", "-in", "good.pem", "-outform", "DER", "-out", str(HERE / "v1-root.crl"), cwd=work)
    openssl("x509", "-inform", "DER", "-in", "signer.der", "-out", "signer-cert.pem", cwd=work)
    openssl("ca", "-config", "ca.cnf", "-revoke", "signer-cert.pem", "-keyfile", "root.key", "-cert", "root.pem",
            cwd=work)
    openssl(*crl[:-2], "-out", "revoked.pem", cwd=work)
    openssl("crl", "-in", "revoked.pem", "-outform", "DER", "-out", str(HERE / "v1-root-revoked.crl"), cwd=work)


if __name__ == "__main__":
    main()
