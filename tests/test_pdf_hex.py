"""seal.pdf_hex: the block reader of PDF hex strings gives pyHanko's own reader's results and errors."""
from __future__ import annotations

import io
import random

from pyhanko.pdf_utils import generic

from seal import pdf_hex


def _read(reader, data: bytes):  # type: ignore[no-untyped-def]
    """(result, where the stream stands afterwards), or the error (a failed parse is abandoned: where the
    stream stands then does not matter)."""
    stream = io.BytesIO(data)
    try:
        value = reader(stream)
    except Exception as exc:   # the same kind of error, the same message
        return type(exc).__name__, str(exc)
    return (type(value).__name__, value), stream.tell()


def _cases() -> list[bytes]:
    rng = random.Random(20261206)
    cases = [b"<>", b"<0>", b"<00>", b"<4142>", b"<414>", b"<41 42\n43\r\t44>", b"<FEFF00410042>",
             b"<feff4e2d6587>", b"<41%comment\n42>", b"<41 %>\n42>", b"<4G>", b"<41", b"<", b"<41>>tail",
             b"<" + b"0" * 20000 + b">", b"<" + b"ab" * 9000 + b"> rest", b"<41\x0c42\x0043>", b"<4 1 4 2>"]
    for _ in range(200):
        size = rng.choice([1, 2, 3, 17, 16383, 16384, 16385, 40000])
        digits = bytes(rng.choice(b"0123456789abcdefABCDEF \n") for _ in range(size))
        tail = rng.choice([b">", b"> trailer", b"", b"x>", b"%>\n>"])
        cases.append(b"<" + digits + tail)
    return cases


def test_the_block_reader_reads_every_string_as_pyhanko_does() -> None:
    assert generic.read_hex_string_from_stream is pdf_hex.read_hex_string_from_stream   # installed on import
    for data in _cases():
        assert _read(pdf_hex.read_hex_string_from_stream, data) == _read(pdf_hex.original(), data), data[:60]
