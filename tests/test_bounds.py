"""Decompression bombs, PDF and OFD alike: a 1.5 MB file whose page content inflates to 1.5 GB
of spaces is refused with one line, no output and no audit entry, the `yinxin` process staying
under 500 MB of peak memory (its RSS measured by a parent process with getrusage, not by us)."""
from __future__ import annotations

import io
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pikepdf
import pytest

from ca_helpers import assert_one_line_error, cli_environment, console_script
from seal.ofd.sample import text_ofd
from seal_support import ORG, CliWorld, db_rows, sm2_cli_world

BOMB_BYTES = 1536 * 1024 * 1024          # 1.5 GiB of spaces
PEAK_LIMIT_KB = 500 * 1024


def _deflated_spaces(total: int, *, raw: bool) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15 if raw else 15)
    block = b" " * (16 << 20)
    out = [compressor.compress(block) for _ in range(total // len(block))]
    out.append(compressor.flush())
    return b"".join(out)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bombs")
    # PDF: one page whose content stream (FlateDecode) is 1.5 GiB of spaces, then some text
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    content = pikepdf.Stream(pdf, b"")
    content.write(_deflated_spaces(BOMB_BYTES, raw=False), filter=pikepdf.Name.FlateDecode)
    pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842], Contents=content,
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)))))
    pdf_path = base / "bomb.pdf"
    pdf.save(pdf_path, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    # OFD: a page Content.xml that inflates to 1.5 GiB (declared so in the zip, as zip bombs do)
    good = zipfile.ZipFile(io.BytesIO(text_ofd([[ORG]])))
    ofd_path = base / "bomb.ofd"
    data = _deflated_spaces(BOMB_BYTES, raw=True)
    crc = 0
    block = b" " * (16 << 20)
    for _ in range(BOMB_BYTES // len(block)):
        crc = zlib.crc32(block, crc)
    with zipfile.ZipFile(ofd_path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in good.infolist():
            if info.filename.endswith("Page_0/Content.xml"):
                bomb = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
                bomb.compress_type = zipfile.ZIP_DEFLATED
                with out.open(bomb, "w", force_zip64=True) as fh:      # zipfile deflates: write the spaces
                    for _ in range(BOMB_BYTES // len(block)):
                        fh.write(block)
            else:
                out.writestr(info, good.read(info))
    assert pdf_path.stat().st_size < 4 << 20 and ofd_path.stat().st_size < 4 << 20
    return {"pdf": pdf_path, "ofd": ofd_path}


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> CliWorld:
    base = tmp_path_factory.mktemp("cli-bounds")
    return sm2_cli_world(base, "bj-ofd")


MEASURE = ("import resource, subprocess, sys\n"
           "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
           "sys.stdout.write(p.stdout.decode('utf-8', 'replace'))\n"
           "sys.stderr.write(p.stderr.decode('utf-8', 'replace'))\n"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
           "sys.exit(p.returncode)\n")


def measured(cli: CliWorld, *args) -> tuple[int, str, int]:
    """(exit code, stderr without the last line, peak RSS in KB) of `yinxin ARGS`."""
    from ca_helpers import CliResult
    env = cli_environment(cli.home, {"YINXIN_CA_PASSWORD": None})
    proc = subprocess.run([sys.executable, "-c", MEASURE, console_script(), *map(str, args)], env=env,
                          capture_output=True, timeout=600)
    err = proc.stderr.decode("utf-8", "replace").splitlines()
    return proc.returncode, "\n".join(err[:-1]), int(err[-1])


@pytest.mark.parametrize("kind, args, needle", [
    ("pdf", ["--anchor", ORG], "decompression bomb"),
    ("ofd", ["--anchor", ORG], "inflates to"),
    ("ofd", ["--page", "1", "--at", "100,100"], "inflates to"),
])
def test_stamping_a_bomb_is_refused_within_bounds(cli, bombs, kind, args, needle):
    out = cli.files / f"bomb-out.{kind}"
    audit = db_rows(cli.db, "SELECT count(*) FROM audit_events")
    code, err, peak_kb = measured(cli, "seal", "stamp", bombs[kind], out, "--seal", "bj-ofd", "--password-file",
                                  cli.password, "--operator", "wang", *args)
    from ca_helpers import CliResult
    assert_one_line_error(CliResult(code, "", err), needle)
    assert code == 2 and not out.exists()
    assert peak_kb < PEAK_LIMIT_KB, f"peak RSS {peak_kb / 1024:.0f} MB"
    assert db_rows(cli.db, "SELECT count(*) FROM audit_events") == audit


@pytest.mark.parametrize("kind", ["pdf", "ofd"])
def test_verifying_a_bomb_stays_within_bounds(cli, bombs, kind):
    code, err, peak_kb = measured(cli, "seal", "verify", bombs[kind])
    assert code in (1, 2) and "Traceback" not in err, err
    if kind == "ofd":
        assert code == 2 and "inflates to" in err
    assert peak_kb < PEAK_LIMIT_KB, f"peak RSS {peak_kb / 1024:.0f} MB"
