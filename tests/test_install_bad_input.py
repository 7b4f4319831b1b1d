"""Bad input around the installation: a missing policy directory, a broken policy file, a database
made by a newer yinxin — one clear line naming the file or version and what to do, nothing written."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from ca_helpers import assert_one_line_error, yinxin

REPO = Path(__file__).resolve().parent.parent


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _dump(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return list(conn.iterdump())


def test_a_missing_policy_directory_says_what_to_do(home: Path, tmp_path: Path) -> None:
    result = yinxin(home, "ca", "list", env={"YINXIN_POLICY_DIR": str(tmp_path / "nowhere")})
    line = assert_one_line_error(result, str(tmp_path / "nowhere"), "does not exist", "yinxin policies export")
    assert "YINXIN_POLICY_DIR" in line


def test_a_file_where_the_policy_directory_should_be(home: Path, tmp_path: Path) -> None:
    (tmp_path / "policies.txt").write_text("not a directory")
    result = yinxin(home, "ca", "list", env={"YINXIN_POLICY_DIR": str(tmp_path / "policies.txt")})
    assert_one_line_error(result, "is not a directory", "yinxin policies export")


def test_a_policy_file_with_an_error_is_named(home: Path, tmp_path: Path) -> None:
    exported = tmp_path / "mine"
    assert yinxin(home, "policies", "export", exported).code == 0
    broken = exported / "profiles" / "seal.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace("validity_days:", "validity_dayz:"),
                      encoding="utf-8")
    result = yinxin(home, "ca", "list", env={"YINXIN_POLICY_DIR": str(exported)})
    assert_one_line_error(result, str(broken), "validity_dayz")
    broken.write_bytes(b"\xff\xfe not utf-8")
    assert_one_line_error(yinxin(home, "ca", "list", env={"YINXIN_POLICY_DIR": str(exported)}),
                          str(broken), "not UTF-8")


def test_policies_export_refuses_a_directory_in_use_and_writes_nothing(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "in-use"
    target.mkdir()
    (target / "mine.yaml").write_text("keep me\n")
    result = yinxin(home, "policies", "export", target)
    assert_one_line_error(result, "is not empty")
    assert _files(target) == {"mine.yaml": b"keep me\n"}
    fresh = tmp_path / "fresh"
    assert yinxin(home, "policies", "export", fresh).code == 0
    shipped = REPO / "policies"
    assert _files(fresh) == {k: v for k, v in _files(shipped).items()
                             if not k.endswith(".py") and "__pycache__" not in k}


def test_a_database_from_a_newer_yinxin_is_refused_untouched(home: Path) -> None:
    assert yinxin(home, "ca", "list").code == 0                      # creates the database
    db = home / "yinxin.db"
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (99999, '2030-01-01 00:00:00')")
    before = _dump(db)
    result = yinxin(home, "ca", "list")
    line = assert_one_line_error(result, "schema version 99999", "newer yinxin", "upgrade yinxin")
    assert "this yinxin knows up to" in line
    assert _dump(db) == before
    doctor = yinxin(home, "doctor")
    assert doctor.code == 0 and "schema 99999 (newer than this yinxin: upgrade yinxin" in doctor.out, doctor
