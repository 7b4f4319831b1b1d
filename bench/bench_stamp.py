"""Stamping throughput and large-file cost, measured against pyHanko's own signer in one run.

    python bench/bench_stamp.py [--quick]

1. Seals per second on a 1-page and a 100-page PDF, for RSA-2048, P-256 and
   SM2: yinxin's `stamp_batch` (loaded keys, 2 worker processes) and its
   single-process loop, against a loop of pyHanko's `SimpleSigner` (which
   re-parses its key for every signature and signs twice: once for the size
   estimate) on the same files with a visible signature of the same size.
   pyHanko has no SM2 signer, so SM2 shows yinxin's numbers only.
2. A ~200 MB PDF (pages with large random image streams): time and peak RSS
   of sealing it, against the time to SHA-256 the same file.

Test certificates are made with the openssl command line in a temporary directory.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pikepdf

import pki
from asn1crypto import pem, x509
from seal.appearance import SealSpec, draw_seal
from seal.cms_signer import make_signer
from seal.pdf_placement import AtPosition
from seal.pdf_sign import stamp_batch, stamp_pdf

ALGS = {"rsa2048": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "sm2": ["-algorithm", "SM2"]}


def run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def make_identity(alg: str, d: Path) -> tuple[Path, Path]:
    sign = ["-sm3", "-sigopt", "distid:1234567812345678"] if alg == "sm2" else ["-sha256"]
    run("openssl", "genpkey", *ALGS[alg], "-out", "key.pem", cwd=d)
    run("openssl", "req", "-x509", "-new", "-key", "key.pem", *sign, "-days", "30",
        "-subj", f"/CN=bench {alg}", "-addext", "keyUsage=critical,digitalSignature,nonRepudiation",
        "-out", "cert.pem", cwd=d)
    return d / "key.pem", d / "cert.pem"


def load_cert(path: Path) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor(path.read_bytes())[2])


def make_pdf(path: Path, pages: int, image_bytes: int = 0) -> Path:
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    side = int((image_bytes / 3) ** 0.5) if image_bytes else 0
    for i in range(pages):
        resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
        content = f"BT /F1 12 Tf 72 770 Td (Page {i + 1} of a benchmark document) Tj ET\n"
        if side:
            image = pikepdf.Stream(pdf, os.urandom(side * side * 3), Type=pikepdf.Name.XObject,
                                   Subtype=pikepdf.Name.Image, Width=side, Height=side,
                                   ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8)
            resources.XObject = pikepdf.Dictionary(Im1=image)
            content += "q 400 0 0 400 100 200 cm /Im1 Do Q\n"
        page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
                                  Resources=resources,
                                  Contents=pikepdf.Stream(pdf, content.encode()))
        pdf.pages.append(pikepdf.Page(page))
    pdf.save(path, compress_streams=False)
    return path


# --------------------------------------------------------------------------- signers

class SignerFactory:
    """Picklable: loads the key once in each worker."""

    def __init__(self, key_pem: bytes, cert: bytes) -> None:
        self.key_pem, self.cert = key_pem, cert

    def __call__(self):
        return make_signer(pki.load_private_key(self.key_pem), x509.Certificate.load(self.cert))


def pyhanko_loop(files: list[Path], out_dir: Path, key: Path, cert: Path, box) -> float:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    start = time.perf_counter()
    simple = signers.SimpleSigner.load(str(key), str(cert))
    for f in files:
        with open(f, "rb") as inp, open(out_dir / f.name, "wb") as out:
            w = IncrementalPdfFileWriter(inp)
            signers.sign_pdf(w, signers.PdfSignatureMetadata(
                field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES), signer=simple,
                new_field_spec=fields.SigFieldSpec("Sig1", on_page=0, box=box), output=out)
    return time.perf_counter() - start


def ours(files, out_dir, factory, drawing, processes) -> float:
    start = time.perf_counter()
    items = stamp_batch(files, out_dir, factory, drawing=drawing,
                        placement=AtPosition(1, 100, 100), processes=processes)
    elapsed = time.perf_counter() - start
    failed = [i.error for i in items if not i.ok]
    if failed:
        raise SystemExit(f"stamping failed: {failed[0]}")
    return elapsed


def throughput(tmp: Path, quick: bool) -> None:
    drawing = draw_seal(SealSpec("official", "北京市测试局"))
    w = drawing.width_pt
    box = (283 - w / 2, 283 - w / 2, 283 + w / 2, 283 + w / 2)
    print("1. seals per second (2 cores; batch = stamp_batch with 2 processes)")
    print(f"{'document':<10} {'alg':<8} {'yinxin batch':>13} {'yinxin 1 proc':>14} "
          f"{'pyHanko loop':>13} {'batch/pyHanko':>14} {'1proc/pyHanko':>14}")
    for pages, count in ((1, 12 if quick else 60), (100, 4 if quick else 16)):
        src = make_pdf(tmp / f"doc{pages}.pdf", pages)
        files = []
        for k in range(count):
            f = tmp / f"in{pages}" / f"d{k:03}.pdf"
            f.parent.mkdir(exist_ok=True)
            shutil.copy(src, f)
            files.append(f)
        for alg in ALGS:
            d = tmp / f"id-{alg}"
            d.mkdir(exist_ok=True)
            key, cert = make_identity(alg, d)
            factory = SignerFactory(key.read_bytes(), load_cert(cert).dump())
            results = {}
            for label, processes in (("batch", 2), ("single", 1)):
                out = tmp / f"out-{label}-{pages}-{alg}"
                out.mkdir()
                results[label] = count / ours(files, out, factory, drawing, processes)
            if alg == "sm2":
                peer = None
            else:
                out = tmp / f"out-pyhanko-{pages}-{alg}"
                out.mkdir()
                peer = count / pyhanko_loop(files, out, key, cert, box)
            ratio = (lambda v: f"{v / peer:13.2f}×" if peer else f"{'n/a':>14}")
            print(f"{pages:>3} page{'s' if pages > 1 else ' '}  {alg:<8} {results['batch']:13.1f} "
                  f"{results['single']:14.1f} {peer if peer else 'no SM2':>13} "
                  f"{ratio(results['batch'])} {ratio(results['single'])}"
                  .replace(f"{peer} ", f"{peer:13.1f} " if peer else "no SM2 "))


# --------------------------------------------------------------------------- large file

def _child(conn, fn, args) -> None:
    elapsed = fn(*args)
    conn.send((elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    conn.close()


def in_child(fn, *args) -> tuple[float, float]:
    """Run fn in a fresh process; (seconds it reports, peak RSS in MiB)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_child, args=(child, fn, args))
    p.start()
    result = parent.recv()
    p.join()
    return result


def hash_file(path: str) -> float:
    start = time.perf_counter()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return time.perf_counter() - start


def seal_file(path: str, out: str, key_pem: bytes, cert: bytes) -> float:
    drawing = draw_seal(SealSpec("official", "北京市测试局"))
    signer = SignerFactory(key_pem, cert)()
    start = time.perf_counter()
    stamp_pdf(path, out, signer=signer, drawing=drawing, placement=AtPosition(1, 100, 100))
    return time.perf_counter() - start


def baseline(_: str) -> float:
    import seal.pdf_sign  # noqa: F401 - the same imports, nothing else
    draw_seal(SealSpec("official", "北京市测试局"))
    return 0.0


def large(tmp: Path, quick: bool) -> None:
    size_mb = 40 if quick else 200
    path = make_pdf(tmp / "large.pdf", size_mb // 4, image_bytes=4 * 1024 * 1024)
    actual = path.stat().st_size / 2**20
    d = tmp / "id-large"
    d.mkdir()
    key, cert = make_identity("rsa2048", d)
    args = (key.read_bytes(), load_cert(cert).dump())
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    t_hash, rss_hash = in_child(hash_file, str(path))
    _, rss_base = in_child(baseline, str(path))
    t_seal, rss_seal = in_child(seal_file, str(path), str(tmp / "large-sealed.pdf"), *args)
    print(f"\n2. sealing a {actual:.0f} MiB PDF (RSA-2048), output fsynced")
    print(f"   SHA-256 of the file:  {t_hash:6.2f} s   (peak RSS {rss_hash:5.0f} MiB)")
    print(f"   stamp_pdf:            {t_seal:6.2f} s   (peak RSS {rss_seal:5.0f} MiB; "
          f"{rss_base:.0f} MiB of it is the interpreter with pyHanko and fonts loaded)")
    print(f"   ratio seal/hash:      {t_seal / t_hash:6.2f}×   (goal ≤ 2×; peak RSS goal ≤ 300 MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer files, a 40 MiB large file")
    parser.add_argument("--only", choices=["throughput", "large"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="yinxin-bench-"))
    try:
        if args.only in (None, "throughput"):
            throughput(tmp, args.quick)
        if args.only in (None, "large"):
            large(tmp, args.quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
