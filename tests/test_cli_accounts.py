"""`yinxin login`, `yinxin logout`, `yinxin account …` and sessions on acting commands, through the
real console script; and every bad session of the issue's "Bad input" — a wrong, expired, forged,
truncated or other-home session file, a replayed or edited one, a disabled or locked account, a wrong
PIN, a person acting for another — refused with one line, exit 2, and the database byte for byte as
it was (every table, the sessions' idle timers included)."""
from __future__ import annotations

import base64
import fcntl
import json
import os
import sqlite3
import subprocess
import termios
import time
from pathlib import Path

import pytest

from ca_helpers import assert_one_line_error, cli_environment, console_script, db_snapshot, yinxin
from docflow_support import bureau, document_pdf
from pki.accounts import Accounts
from pki.accounts.testing import TEST_PIN, actor_for_tests
from pki.home import Home

INITIAL = "seven lanterns at dusk"
OWN = "quiet orchard in spring"


class Home_:
    """A home with the example organisation, person certificates, and an admin (root), driven by the CLI."""

    def __init__(self, base: Path) -> None:
        self.base = base
        b = bureau(base)                                   # CAs, organisation, certified people
        self.path = b.path
        accounts = Accounts(b.home)
        admin = b.admin()                                  # the prepared home's admin (no password)
        accounts.create("root", name="管理员", roles=["admin"], password=INITIAL.encode(), actor=admin)
        for person in ("sun", "chen", "zhao", "liu"):
            accounts.set_password(person, INITIAL.encode(), actor=admin)
        b.home.store.dispose()
        self.files = base / "files"
        self.files.mkdir()
        for name, text in (("initial.pw", INITIAL), ("own.pw", OWN),
                           ("pin", TEST_PIN.decode()), ("wrong-pin", "00000000"), ("wrong.pw", "not the password")):
            self.secret(name, text)

    def secret(self, name: str, text: str) -> Path:
        path = self.files / name
        path.write_text(text + "\n")
        os.chmod(path, 0o600)
        return path

    def run(self, *args: str | os.PathLike[str], env: dict[str,
                                                           str | None] | None = None):  # type: ignore[no-untyped-def]
        return yinxin(self.path, *args, env=env)

    def ok(self, *args: str | os.PathLike[str], env: dict[str,
                                                          str | None] | None = None):  # type: ignore[no-untyped-def]
        result = self.run(*args, env=env)
        assert result.code == 0, result
        return result

    def db(self) -> dict:
        return db_snapshot(self.path / "yinxin.db", idle_timers=True)

    def login(self, person: str, *extra: str | os.PathLike[str], out: str | None = None) -> Path:
        session = self.files / (out or f"{person}.session")
        self.ok("login", person, "--password-file", self.files / "own.pw", "--session-out", session, *extra)
        return session

    def first_login(self, person: str) -> Path:
        session = self.files / f"{person}.session"
        self.ok("login", person, "--password-file", self.files / "initial.pw", "--new-password-file",
                self.files / "own.pw", "--session-out", session)
        return session


@pytest.fixture(scope="module")
def h(tmp_path_factory) -> Home_:
    world = Home_(tmp_path_factory.mktemp("cli-accounts"))
    for person in ("root", "sun", "chen", "zhao", "liu"):
        world.first_login(person)
    return world


def test_login_writes_a_private_session_file_and_logout_ends_it(h: Home_) -> None:
    session = h.login("chen", "--pin-file", h.files / "pin", out="chen-2.session")
    assert (session.stat().st_mode & 0o777) == 0o600
    data = json.loads(session.read_text())
    assert set(data) == {"format", "home", "account", "session", "token", "expires", "key"}
    assert len(base64.urlsafe_b64decode(data["token"] + "==")) == 32           # 256 bits
    con = sqlite3.connect(h.path / "yinxin.db")
    stored = [r[0] for r in con.execute("SELECT token_hash FROM account_sessions")]
    con.close()
    import hashlib
    token = base64.urlsafe_b64decode(data["token"] + "==")
    assert hashlib.sha256(token).hexdigest() in stored and data["token"] not in json.dumps(stored)
    shown = json.loads(h.ok("account", "show", "--session", session, "--json").out)
    assert shown["id"] == "chen" and shown["key"] == "active"
    out = h.ok("logout", "--session", session).out
    assert "session of chen ended" in out and not session.exists()


def test_an_initial_password_must_be_changed(h: Home_, tmp_path: Path) -> None:
    result = h.run("login", "zhao", "--password-file", h.files / "initial.pw", "--session-out", tmp_path / "s")
    assert_one_line_error(result, "wrong account or password")   # zhao changed it at the first login
    admin = h.login("root", out="root.session")
    h.ok("account", "set-password", "zhao", "--password-file", h.files / "initial.pw", "--session", admin)
    before = h.db()
    refused = h.run("login", "zhao", "--password-file", h.files / "initial.pw", "--session-out", tmp_path / "s")
    assert_one_line_error(refused, "an initial one", "--new-password-file")
    assert refused.code == 2 and h.db() == before and not (tmp_path / "s").exists()
    h.first_login("zhao")


def test_account_administration_through_the_cli(h: Home_) -> None:
    admin = h.login("root", out="root.session")
    created = json.loads(h.ok("account", "create", "gu", "--name", "顾审核", "--roles", "ra_officer",
                              "--password-file", h.files / "initial.pw", "--session", admin, "--json").out)
    assert created["roles"] == ["ra_officer"] and created["must_change_password"] is True
    listed = h.ok("account", "list", "--session", admin).out
    assert "gu" in listed and "must change password" in listed and "sun" in listed
    sun = h.files / "sun.session"
    assert_one_line_error(h.run("account", "list", "--session", sun), "sun does not hold the role admin")
    h.ok("account", "disable", "gu", "--session", admin)
    assert_one_line_error(h.run("login", "gu", "--password-file", h.files / "initial.pw", "--session-out",
                                h.files / "gu.session"), "account gu is disabled")
    h.ok("account", "enable", "gu", "--session", admin)
    h.ok("account", "roles", "gu", "--roles", "ra_officer,seal_admin", "--session", admin)
    bootstrap = h.run("account", "create", "root2", "--name", "x", "--roles", "admin", "--password-file",
                      h.files / "own.pw", env={"YINXIN_SESSION": None})
    assert_one_line_error(bootstrap, "has an admin already")


# --------------------------------------------------------------------------- bad sessions

@pytest.fixture(scope="module")
def doc(h: Home_) -> str:
    """A document sun drafted, waiting for chen or zhao (department heads)."""
    body = h.files / "body.pdf"
    body.write_bytes(document_pdf())
    sun = h.login("sun", "--pin-file", h.files / "pin", out="sun-signing.session")
    return h.ok("doc", "new", "--kind", "upward", "--title", "关于开展电子印章试点工作的请示", "--pdf", body,
                "--session", sun).out.strip()


def approve(h: Home_, doc: str, session: Path | str, *extra: str):  # type: ignore[no-untyped-def]
    return h.run("doc", "act", doc, "--action", "approve", "--opinion", "同意", "--session", session, *extra)


def refused_exactly(h: Home_, result_of, *needles: str) -> None:  # type: ignore[no-untyped-def]
    before = h.db()
    result = result_of()
    assert_one_line_error(result, *needles)
    assert result.code == 2, result
    assert h.db() == before, "a refused command changed the database"


def test_bad_session_files(h: Home_, doc: str, tmp_path: Path) -> None:
    good = h.login("chen", "--pin-file", h.files / "pin", out="chen-bad.session")
    data = json.loads(good.read_text())

    def variant(name: str, content: bytes | str) -> Path:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    forged = dict(data, token=base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))
    other_account = dict(data, account="zhao")
    other_key = dict(data, key=base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="))
    other_home = dict(data, home="0" * 32)
    cases = {
        "missing": (tmp_path / "nope.session", "cannot read session file"),
        "not a session": (variant("garbage", b"\x00\xffhello"), "not a yinxin session file"),
        "truncated": (variant("truncated", good.read_bytes()[:60]), "damaged or truncated"),
        "forged token": (variant("forged", json.dumps(forged)), "never valid here"),
        "edited account": (variant("edited-account", json.dumps(other_account)), "the session file was edited"),
        "edited key": (variant("edited-key", json.dumps(other_key)), "(the file was edited)"),
        "other home": (variant("other-home", json.dumps(other_home)), "belongs to another yinxin home"),
    }
    for name, (path, needle) in cases.items():
        refused_exactly(h, lambda: approve(h, doc, path), needle)
    # acting for another person: the claim must be the session's account
    refused_exactly(h, lambda: approve(h, doc, good, "--user", "zhao"), "--user zhao is not the session's account chen")
    # replayed after logout
    h.ok("logout", "--session", variant("copy", good.read_bytes()))
    refused_exactly(h, lambda: approve(h, doc, good), "has ended")


def test_expired_sessions(h: Home_, doc: str) -> None:
    session = h.login("zhao", "--pin-file", h.files / "pin", out="zhao-old.session")
    sid = json.loads(session.read_text())["session"]
    con = sqlite3.connect(h.path / "yinxin.db", isolation_level=None)
    con.execute("UPDATE account_sessions SET last_seen_at = datetime(last_seen_at, '-31 minutes') WHERE id = ?",
                (sid,))
    con.close()
    refused_exactly(h, lambda: approve(h, doc, session), "expired after 30 idle minutes")
    con = sqlite3.connect(h.path / "yinxin.db", isolation_level=None)
    con.execute("UPDATE account_sessions SET last_seen_at = datetime('now'), "
                "expires_at = datetime('now', '-1 minute') WHERE id = ?", (sid,))
    con.close()
    refused_exactly(h, lambda: approve(h, doc, session), "absolute timeout")


def test_disabled_and_locked_accounts(h: Home_, doc: str) -> None:
    admin = h.login("root", out="root-2.session")
    session = h.login("liu", out="liu.session")
    h.ok("account", "disable", "liu", "--session", admin)
    refused_exactly(h, lambda: h.run("doc", "todo", "--session", session), "has ended")    # sessions ended
    refused_exactly(h, lambda: h.run("login", "liu", "--password-file", h.files / "own.pw", "--session-out",
                                     h.files / "liu2.session"), "account liu is disabled")
    h.ok("account", "enable", "liu", "--session", admin)
    # locked: ten wrong passwords (throttling waits are short at first: sleep them out)
    from pki.home import Home
    policy = Accounts.of(Home.open(h.path)).policy
    for n in range(policy.max_failures):
        wait = policy.throttle_wait(n)
        if wait:
            time.sleep(wait + 0.2)
        h.run("login", "liu", "--password-file", h.files / "wrong.pw", "--session-out", h.files / "x.session")
    refused_exactly(h, lambda: h.run("login", "liu", "--password-file", h.files / "own.pw", "--session-out",
                                     h.files / "liu3.session"), "is locked")
    h.ok("account", "unlock", "liu", "--session", admin)
    h.login("liu", out="liu4.session")


def test_wrong_pin_and_a_session_without_the_key(h: Home_, doc: str) -> None:
    refused_exactly(h, lambda: h.run("login", "zhao", "--password-file", h.files / "own.pw", "--pin-file",
                                     h.files / "wrong-pin", "--session-out", h.files / "zhao-pin.session"),
                    "wrong PIN")
    assert not (h.files / "zhao-pin.session").exists()
    unsigned = h.login("zhao", out="zhao-nokey.session")
    refused_exactly(h, lambda: approve(h, doc, unsigned), "has not unlocked", "--pin-file")


def test_a_stolen_session_file_cannot_sign_after_the_session_ended(h: Home_, doc: str) -> None:
    session = h.login("chen", "--pin-file", h.files / "pin", out="chen-stolen.session")
    stolen = session.read_bytes()
    # neither the file nor the database holds the private key in the clear
    from pki.home import Home
    home = Home.open(h.path)
    key = Accounts(home).resume_file(stolen, touch=False)._signing_key
    secret, scalar = key.to_pkcs8_der(), key._d.to_bytes(32, "big")
    home.store.dispose()
    assert scalar not in stolen and secret not in stolen
    for path in h.path.rglob("*"):
        if path.is_file():
            assert scalar not in path.read_bytes(), path
    h.ok("logout", "--session", session)
    thief = h.files / "thief.session"
    thief.write_bytes(stolen)
    refused_exactly(h, lambda: approve(h, doc, thief), "has ended")


def test_login_prompts_on_a_terminal(h: Home_, tmp_path: Path) -> None:
    """A person at a terminal types the password (and a new one for an initial password)."""
    admin = h.login("root", out="root-3.session")
    h.ok("account", "set-password", "sun", "--password-file", h.files / "initial.pw", "--session", admin)
    out = tmp_path / "sun.session"
    master, slave = os.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([console_script(), "login", "sun", "--session-out", str(out)], stdin=slave,
                            stdout=slave, stderr=slave, env=cli_environment(h.path, {"YINXIN_SESSION": None}),
                            preexec_fn=controlling_terminal, close_fds=True, pass_fds=(slave,))
    os.close(slave)
    seen = b""
    answers = [(b"Password for sun", INITIAL), (b"PIN", ""), (b"New password", OWN), (b"Repeat for confirmation", OWN)]
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            chunk = os.read(master, 1024)
        except OSError:
            break
        seen += chunk
        while answers and answers[0][0] in seen:
            prompt, answer = answers.pop(0)
            seen = seen.split(prompt, 1)[1]
            os.write(master, answer.encode() + b"\n")
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, seen
    assert out.exists() and (out.stat().st_mode & 0o777) == 0o600
    assert json.loads(out.read_text())["account"] == "sun"


def test_a_new_homes_first_root_ca_needs_no_session_and_nothing_after_it_does(tmp_path: Path) -> None:
    """`yinxin ca init` on a new install (issue 13's first step): while the home has no account and no
    CA nobody can log in, so its first root is set up without a session — the same window in which
    anybody may create the first admin — and recorded as service:bootstrap; then every act needs one."""
    home = tmp_path / "home"
    pw = tmp_path / "ca.pw"
    pw.write_bytes(b"Bootstrap-ca-pass-1\n")
    env = {"YINXIN_SESSION": None}
    first = yinxin(home, "ca", "init", "--name", "root", "--subject", "/C=CN/CN=Bootstrap Root", "--algorithm",
                   "ecdsa-p256", "--ca-password-file", pw, env=env)
    assert first.code == 0, first
    con = sqlite3.connect(home / "yinxin.db")
    try:
        assert con.execute("SELECT actor, action FROM audit_events WHERE action = 'ca.init'").fetchall() == [
            ("service:bootstrap", "ca.init")]
    finally:
        con.close()
    before = db_snapshot(home / "yinxin.db")
    for args in (("--name", "root2", "--subject", "/CN=Second Root"),                       # a second root
                 ("--name", "sub", "--subject", "/CN=Sub", "--parent", "root")):            # a subordinate
        refused = yinxin(home, "ca", "init", *args, "--algorithm", "ecdsa-p256", "--ca-password-file", pw,
                         "--parent-password-file", pw, env=env)
        assert_one_line_error(refused, "log in first")
        assert refused.code == 2
    assert db_snapshot(home / "yinxin.db") == before and not (home / "cas" / "root2").exists()
    # a home with an account (the first admin made first) has no bootstrap either
    other = tmp_path / "other"
    admin_pw = tmp_path / "admin.pw"
    admin_pw.write_bytes(b"a kettle of jasmine tea\n")
    made = yinxin(other, "account", "create", "admin", "--name", "管理员", "--roles", "admin", "--password-file",
                  admin_pw, env=env)
    assert made.code == 0, made
    refused = yinxin(other, "ca", "init", "--name", "root", "--subject", "/CN=R", "--algorithm", "ecdsa-p256",
                     "--ca-password-file", pw, env=env)
    assert_one_line_error(refused, "log in first")
    assert not (other / "cas" / "root").exists()
    # the library: the bootstrap actor exists only in that window, and sets up nothing but the first root
    opened = Home.open(home)
    try:
        with pytest.raises(Exception, match="log in first"):
            Accounts.of(opened).bootstrap_actor()
    finally:
        opened.store.dispose()
