"""Make the GB/T 38540 SES_Seal vectors with the OpenSSL command line only (no yinxin code):
keys and certificates by `openssl genpkey/req/x509`, the DER by `openssl asn1parse -genconf`,
the maker's signature by `openssl pkeyutl -rawin -digest sm3` (SM2, GM/T 0009 distid) and
`openssl dgst -sha256 -sign` (RSA PKCS#1 v1.5, deterministic) over the DER of SES_SealInfo, as
GB/T 38540 wants (one vector, `…-gmt0031-rule`, over SEQUENCE{SES_SealInfo, cert, signAlgID}: the
GM/T 0031 rule yinxin followed before 0.2).  Run once from this directory:

    python make_vectors.py

It rewrites every file it lists in README.md; the tests only read them.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DISTID = "1234567812345678"
KEY_PASSWORD = "vector-key-password"       # the RSA maker key is stored encrypted, for the byte-equal test
NAME = "北京市测试局"
ES_ID = "openssl-vector-0001"
VENDOR = "openssl"
TIMES = {"create": "20260101080000Z", "start": "20260101080000Z", "end": "20290101080000Z"}
# a 2x2 PNG, red with transparency (written out as bytes so that the vector needs no image library)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d494844520000000200000002080600000072b60d24000000144944415478da63bcc3c0b080"
    "8181818189010a0017920180bd3b5bec0000000049454e44ae426082")


def openssl(*args: str, cwd: Path, input: bytes | None = None) -> bytes:
    proc = subprocess.run(["openssl", *args], cwd=cwd, input=input, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"openssl {' '.join(args)}: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def pki(work: Path, alg: str) -> None:
    keygen = {"sm2": ["-algorithm", "SM2"], "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]}[alg]
    sign = ["-sm3", "-sigopt", f"distid:{DISTID}"] if alg == "sm2" else ["-sha256"]
    vfy = ["-vfyopt", f"distid:{DISTID}"] if alg == "sm2" else []
    openssl("genpkey", *keygen, "-out", "maker.key", cwd=work)
    openssl("genpkey", *keygen, "-out", "seal.key", cwd=work)
    openssl("req", "-x509", "-new", "-key", "maker.key", *sign, "-days", "3650", "-utf8",
            "-subj", f"/C=CN/O=印信测试/CN=OpenSSL {alg.upper()} Seal Maker", "-set_serial", "1",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-outform", "DER", "-out", "maker.der", cwd=work)
    openssl("req", "-new", "-key", "seal.key", *sign, "-utf8", "-subj", f"/C=CN/O={NAME}/CN={NAME}公章",
            "-out", "seal.csr", cwd=work)
    (work / "seal.ext").write_text("basicConstraints=critical,CA:FALSE\n"
                                   "keyUsage=critical,digitalSignature,nonRepudiation\n")
    openssl("x509", "-req", "-in", "seal.csr", "-CA", "maker.der", "-CAform", "DER", "-CAkey", "maker.key",
            *sign, *vfy, "-days", "1095", "-set_serial", "4660", "-extfile", "seal.ext", "-outform", "DER",
            "-out", "seal.der", cwd=work)


def seal_info_conf(work: Path, *, version: int = 4, cert_list_type: int = 1) -> str:
    seal_cert = (work / "seal.der").read_bytes().hex()
    sm3 = openssl("dgst", "-sm3", "-binary", "seal.der", cwd=work).hex()
    cert_list = (f"c1=FORMAT:HEX,OCTETSTRING:{seal_cert}" if cert_list_type == 1 else
                 "d1=SEQUENCE:digest\n[digest]\ntype=PRINTABLESTRING:SM3\n"
                 f"value=FORMAT:HEX,OCTETSTRING:{sm3}")
    return f"""[info]
header=SEQUENCE:header
esid=IA5STRING:{ES_ID}
property=SEQUENCE:property
picture=SEQUENCE:picture
[header]
id=IA5STRING:ES
version=INTEGER:{version}
vid=IA5STRING:{VENDOR}
[property]
type=INTEGER:1
name=FORMAT:UTF8,UTF8String:{NAME}
certlisttype=INTEGER:{cert_list_type}
certlist=SEQUENCE:certlist
create=GENTIME:{TIMES['create']}
start=GENTIME:{TIMES['start']}
end=GENTIME:{TIMES['end']}
[picture]
type=IA5STRING:png
data=FORMAT:HEX,OCTETSTRING:{PNG.hex()}
width=INTEGER:42
height=INTEGER:42
[certlist]
{cert_list}
"""


def make_seal(work: Path, alg: str, stem: str, *, version: int = 4, cert_list_type: int = 1,
              tamper_name: str | None = None, rule: str = "gbt38540") -> None:
    oid = "1.2.156.10197.1.501" if alg == "sm2" else "1.2.840.113549.1.1.11"
    maker = (work / "maker.der").read_bytes().hex()
    info = seal_info_conf(work, version=version, cert_list_type=cert_list_type)
    if rule == "gbt38540":      # GB/T 38540: the maker signs SES_SealInfo
        (work / "tbs.cnf").write_text(f"asn1=SEQUENCE:info\n{info}")
    else:                       # GM/T 0031: SEQUENCE { SES_SealInfo, cert, signAlgID }
        (work / "tbs.cnf").write_text(f"asn1=SEQUENCE:tbs\n[tbs]\ninfo=SEQUENCE:info\n"
                                      f"cert=FORMAT:HEX,OCTETSTRING:{maker}\nalg=OID:{oid}\n{info}")
    openssl("asn1parse", "-genconf", "tbs.cnf", "-noout", "-out", "tbs.der", cwd=work)
    if alg == "sm2":
        openssl("pkeyutl", "-sign", "-inkey", "maker.key", "-rawin", "-digest", "sm3",
                "-pkeyopt", f"distid:{DISTID}", "-in", "tbs.der", "-out", "sig.bin", cwd=work)
    else:
        openssl("dgst", "-sha256", "-sign", "maker.key", "-out", "sig.bin", "tbs.der", cwd=work)
    signature = (work / "sig.bin").read_bytes().hex()
    if tamper_name is not None:           # signed over NAME, then the name changed
        info = info.replace(f"UTF8String:{NAME}", f"UTF8String:{tamper_name}")
    (work / "seal.cnf").write_text(f"asn1=SEQUENCE:seal\n[seal]\ninfo=SEQUENCE:info\n"
                                   f"cert=FORMAT:HEX,OCTETSTRING:{maker}\nalg=OID:{oid}\n"
                                   f"sig=FORMAT:HEX,BITSTRING:{signature}\n{info}")
    openssl("asn1parse", "-genconf", "seal.cnf", "-noout", "-out", "seal-out.der", cwd=work)
    shutil.copy(work / "seal-out.der", HERE / f"{stem}.der")


def main() -> None:
    expected: dict[str, object] = {
        "es_id": ES_ID, "vendor": VENDOR, "seal_type": 1, "name": NAME, "picture_type": "png",
        "picture_hex": PNG.hex(), "width_mm": 42, "height_mm": 42, "distid": DISTID, **TIMES}
    with tempfile.TemporaryDirectory() as tmp:
        for alg in ("sm2", "rsa"):
            work = Path(tmp) / alg
            work.mkdir()
            pki(work, alg)
            make_seal(work, alg, f"ses-{alg}-openssl")
            shutil.copy(work / "maker.der", HERE / f"ses-{alg}-openssl-maker.der")
            shutil.copy(work / "seal.der", HERE / f"ses-{alg}-openssl-seal-cert.der")
            if alg == "sm2":
                make_seal(work, alg, "ses-sm2-openssl-tampered-name", tamper_name="天津市测试局")
                make_seal(work, alg, "ses-sm2-openssl-version-2", version=2)
                make_seal(work, alg, "ses-sm2-openssl-cert-digests", cert_list_type=2)
                make_seal(work, alg, "ses-sm2-openssl-gmt0031-rule", rule="gmt0031")
            else:
                openssl("pkcs8", "-topk8", "-in", "maker.key", "-v2", "aes-256-cbc", "-passout",
                        f"pass:{KEY_PASSWORD}", "-out", str(HERE / "ses-rsa-openssl-maker.key"), cwd=work)
    expected["rsa_maker_key_password"] = KEY_PASSWORD
    (HERE / "ses-openssl.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n",
                                           encoding="utf-8")


if __name__ == "__main__":
    main()
