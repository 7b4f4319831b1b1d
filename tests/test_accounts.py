"""Accounts, passwords, lockout, sessions and the actor, through the library (pki.accounts).

Judged independently where something can judge: argon2-cffi's own parser reads the stored hashes
(`$argon2id$v=19$m=19456,t=2,p=1$…`); the database is read with sqlite3; time moves only on a
FixedClock."""
from __future__ import annotations

import copy
import json
import pickle
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from ca_helpers import fixed_clock
from pki.accounts import (AccountDisabled, AccountLocked, Accounts, Actor, AuthenticationFailed, LoginThrottled,
                          NotPermitted, PasswordChangeRequired, PasswordRejected, SessionInvalid)
from pki.accounts.testing import actor_for_tests
from pki.home import Home

ADMIN_PW = b"kettle of jasmine tea"
INITIAL = b"seven lanterns at dusk"
OWN = b"quiet orchard in spring"


def rows(home: Path, table: str) -> list[tuple]:
    con = sqlite3.connect(home / "yinxin.db")
    try:
        return con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        con.close()


def snapshot(home: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(home / "yinxin.db")
    try:
        names = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {n: con.execute(f"SELECT * FROM {n}").fetchall() for n in names}
    finally:
        con.close()


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = fixed_clock()
    home = Home.open(tmp_path / "home", clock=clock)
    accounts = Accounts(home)
    accounts.create("root", name="管理员", roles=["admin"], password=ADMIN_PW, actor=None)
    admin = accounts.authenticate("root", ADMIN_PW).actor
    accounts.create("sun", name="孙拟稿", organisation="北京市测试局", password=INITIAL, actor=admin)
    return home, clock, accounts, admin


def audit(home: Path, action: str) -> list[tuple]:
    return [r for r in rows(home, "audit_events") if r[3] == action]


def test_the_first_admin_only_while_there_is_none(tmp_path: Path) -> None:
    home = Home.open(tmp_path / "home", clock=fixed_clock())
    accounts = Accounts(home)
    with pytest.raises(NotPermitted, match="only an admin creates accounts"):
        accounts.create("clerk", name="Clerk", roles=["ra_officer"], password=ADMIN_PW, actor=None)
    first = accounts.create("root", name="Root", roles=["admin"], password=ADMIN_PW, actor=None)
    assert not first.must_change_password                 # their own password, chosen by themselves
    before = snapshot(tmp_path / "home")
    with pytest.raises(NotPermitted, match="has an admin already"):
        accounts.create("root2", name="Root two", roles=["admin"], password=OWN, actor=None)
    assert snapshot(tmp_path / "home") == before
    sun = actor_for_tests(home, "sun")                    # no admin: may not create accounts
    with pytest.raises(NotPermitted, match="does not hold the role admin"):
        accounts.create("zhao", name="Zhao", password=OWN, actor=sun)


def test_stored_hashes_are_argon2id_with_the_asvs_parameters(world) -> None:  # type: ignore[no-untyped-def]
    home, _, accounts, _ = world
    stored = {r[0]: r[6] for r in rows(home.path, "accounts")}
    for account, password in (("root", ADMIN_PW), ("sun", INITIAL)):
        hashed = stored[account]
        assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), hashed
        params = extract_parameters(hashed)
        assert (params.type, params.memory_cost, params.time_cost, params.parallelism) == (Type.ID, 19456, 2, 1)
        assert params.salt_len == 16 and params.hash_len == 32
        assert PasswordHasher().verify(hashed, password)      # argon2-cffi's verifier, not ours
    assert all(ADMIN_PW not in bytes(str(r), "utf-8") for r in rows(home.path, "audit_events"))


@pytest.mark.parametrize("password, rule", [
    (b"short words", "at least 12"),
    (b"qwertyuiop123", "common"),
    (b"password2024!", "common"),
    (b"iloveyouiloveyou", "common"),
    (b"aaaaaaaaaaaaaaaa", "repetition"),
    (b"1234567890123456", "repetition or a keyboard"),
    (b"sun likes green tea", "account's id"),
    ("my name is 孙拟稿 ok".encode(), "person's name"),
    ("北京市测试局的一位公务员".encode(), "organisation's name"),
    (b"x" * 129, "at most 128"),
    (b"\xff\xfe not utf-8 at all", "UTF-8"),
])
def test_password_rules(world, password: bytes, rule: str) -> None:  # type: ignore[no-untyped-def]
    home, _, accounts, admin = world
    before = snapshot(home.path)
    with pytest.raises(PasswordRejected) as info:
        accounts.set_password("sun", password, actor=admin)
    assert rule.lower() in info.value.message.lower()
    assert snapshot(home.path) == before


def test_long_passphrases_without_composition_rules_are_fine(world) -> None:  # type: ignore[no-untyped-def]
    _, _, accounts, admin = world
    for phrase in (b"all lower case and long enough", "长城脚下的一棵老槐树开花了".encode(),
                   b"a long walk " * 10):
        accounts.set_password("sun", phrase, actor=admin)


def test_initial_password_is_changed_at_first_login(world) -> None:  # type: ignore[no-untyped-def]
    home, _, accounts, _ = world
    before = snapshot(home.path)
    with pytest.raises(PasswordChangeRequired, match="initial one"):
        accounts.authenticate("sun", INITIAL)
    assert snapshot(home.path) == before                   # a refused login writes nothing
    with pytest.raises(PasswordRejected, match="differ from the current one"):
        accounts.authenticate("sun", INITIAL, new_password=INITIAL)
    session = accounts.authenticate("sun", INITIAL, new_password=OWN)
    assert session.actor.account_id == "sun" and not accounts.get("sun").must_change_password
    assert accounts.authenticate("sun", OWN).actor.account_id == "sun"
    assert [r[4] for r in audit(home.path, "account.password_change")] == ["account:sun"]


def test_failed_logins_are_throttled_then_lock_until_an_admin_unlocks(world) -> None:  # type: ignore[no-untyped-def]
    home, clock, accounts, admin = world
    accounts.authenticate("sun", INITIAL, new_password=OWN)
    policy = accounts.policy
    for n in range(1, policy.max_failures + 1):
        wait = policy.throttle_wait(n - 1)
        if wait:
            before = snapshot(home.path)
            with pytest.raises(LoginThrottled, match="try again in"):
                accounts.authenticate("sun", b"wrong password entirely")
            assert snapshot(home.path) == before           # nothing checked, nothing counted
            clock.advance(timedelta(seconds=wait))
        error = AccountLocked if n == policy.max_failures else AuthenticationFailed
        with pytest.raises(error):
            accounts.authenticate("sun", b"wrong password entirely")
    assert accounts.get("sun").locked
    before = snapshot(home.path)
    with pytest.raises(AccountLocked, match="an administrator must unlock it"):
        accounts.authenticate("sun", OWN)                  # even the right password
    assert snapshot(home.path) == before
    assert len(audit(home.path, "account.login_failure")) == policy.max_failures
    assert len(audit(home.path, "account.lock")) == 1
    accounts.unlock("sun", actor=admin)
    assert accounts.authenticate("sun", OWN).actor.account_id == "sun"
    assert [r[4] for r in audit(home.path, "account.unlock")] == ["account:sun"]


def test_unknown_account_costs_the_same_and_says_the_same(world) -> None:  # type: ignore[no-untyped-def]
    _, _, accounts, _ = world
    with pytest.raises(AuthenticationFailed, match="wrong account or password"):
        accounts.authenticate("nobody", OWN)
    with pytest.raises(AuthenticationFailed, match="wrong account or password"):
        accounts.authenticate("sun", b"not the password at all")


def test_disabling_ends_sessions_at_once_and_keeps_the_actor_out(world) -> None:  # type: ignore[no-untyped-def]
    home, _, accounts, admin = world
    session = accounts.authenticate("sun", INITIAL, new_password=OWN)
    accounts.require(session.actor)
    accounts.disable("sun", actor=admin)
    assert accounts.sessions("sun") == 0
    with pytest.raises(AccountDisabled):
        accounts.require(session.actor)                    # the actor object in memory is refused too
    with pytest.raises(SessionInvalid, match="ended"):
        accounts.resume_file(session.to_file())
    before = snapshot(home.path)
    with pytest.raises(AccountDisabled):
        accounts.authenticate("sun", OWN)
    assert snapshot(home.path) == before
    accounts.enable("sun", actor=admin)
    accounts.authenticate("sun", OWN)
    with pytest.raises(Exception, match="last enabled admin"):
        accounts.disable("root", actor=admin)


def test_rights_removed_take_effect_for_open_sessions(world) -> None:  # type: ignore[no-untyped-def]
    _, _, accounts, admin = world
    accounts.set_roles("sun", ["ra_officer"], actor=admin)
    session = accounts.authenticate("sun", INITIAL, new_password=OWN)
    accounts.require(session.actor, any_of=("ra_officer",))
    accounts.set_roles("sun", [], actor=admin)
    with pytest.raises(NotPermitted, match="does not hold the role ra_officer"):
        accounts.require(session.actor, any_of=("ra_officer",))


def test_sessions_end_after_idle_and_absolute_timeouts(world) -> None:  # type: ignore[no-untyped-def]
    home, clock, accounts, _ = world
    session = accounts.authenticate("sun", INITIAL, new_password=OWN)
    data = session.to_file()
    assert json.loads(data)["token"] and b"argon2" not in data
    assert rows(home.path, "account_sessions")[0][1] != json.loads(data)["token"]   # only a hash is stored
    policy = accounts.policy
    step = timedelta(minutes=policy.session_idle_minutes - 1)
    while clock.now() + step < session.expires_at:
        clock.advance(step)
        accounts.resume_file(data)                          # in use: the idle timer restarts
    clock.set(session.expires_at)
    before = snapshot(home.path)
    with pytest.raises(SessionInvalid, match="absolute timeout"):
        accounts.resume_file(data)
    assert snapshot(home.path) == before
    again = accounts.authenticate("sun", OWN).to_file()
    clock.advance(timedelta(minutes=policy.session_idle_minutes, seconds=1))
    with pytest.raises(SessionInvalid, match="idle minutes"):
        accounts.resume_file(again)


def test_logout_ends_the_session_on_the_server(world) -> None:  # type: ignore[no-untyped-def]
    _, _, accounts, _ = world
    session = accounts.authenticate("sun", INITIAL, new_password=OWN)
    actor = accounts.resume_file(session.to_file())
    accounts.logout(actor)
    with pytest.raises(SessionInvalid, match="ended"):
        accounts.resume_file(session.to_file())            # replayed after logout
    with pytest.raises(SessionInvalid):
        accounts.require(actor)


def test_an_actor_cannot_be_made_copied_or_pickled(world) -> None:  # type: ignore[no-untyped-def]
    _, _, accounts, admin = world
    with pytest.raises(TypeError, match="cannot be made by hand"):
        Actor(account_id="root", name="x", roles=["admin"], organisation=None, session_id=None, method="session",
              home_id="x")
    with pytest.raises(TypeError):
        Actor.__new__(Actor)
    with pytest.raises(TypeError, match="cannot be copied or pickled"):
        pickle.dumps(admin)
    assert copy.copy(admin) is admin and copy.deepcopy(admin) is admin
    with pytest.raises(AttributeError, match="immutable"):
        admin.roles = frozenset({"admin", "ca_operator"})  # type: ignore[misc]
    with pytest.raises(TypeError, match="authenticated pki.accounts.Actor"):
        accounts.require("root")                           # type: ignore[arg-type]


def test_an_actor_of_another_home_is_refused(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, _, admin = world
    other = Home.open(tmp_path / "other", clock=fixed_clock())
    other_accounts = Accounts(other)
    other_accounts.create("root", name="Root", roles=["admin"], password=ADMIN_PW, actor=None)
    with pytest.raises(NotPermitted, match="another yinxin home"):
        other_accounts.require(admin)
    with pytest.raises(NotPermitted, match="another yinxin home"):
        other_accounts.create("zhao", name="Zhao", password=OWN, actor=admin)


def test_no_module_of_yinxin_imports_the_test_helper() -> None:
    """Only tests make actors without a password or a session."""
    root = Path(__file__).resolve().parent.parent
    import re
    importing = re.compile(r"^\s*(from\s+\S*accounts(\.|\s+import\s+)testing|import\s+\S*accounts\.testing)", re.M)
    offenders = [str(p.relative_to(root)) for package in ("pki", "seal", "docflow", "cli", "console")
                 for p in sorted((root / package).rglob("*.py"))
                 if p.name != "testing.py" and importing.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_ids_with_a_trailing_newline_are_refused(world) -> None:  # type: ignore[no-untyped-def]
    """`$` in a pattern also matches before a final newline: ids, token names and tokens are matched
    whole, so "sun\\n" is no account id (nor a person id in an organisation file, nor a step id)."""
    from pki.errors import PolicyError
    from docflow.directory import _PERSON_ID
    from docflow.routes import _ID
    from pki.accounts.tokens import _NAME, _TOKEN, PREFIX
    home, _, accounts, admin = world
    before = snapshot(home.path)
    with pytest.raises(PolicyError, match="letters, digits"):
        accounts.create("zhao\n", name="Zhao", actor=admin)
    assert snapshot(home.path) == before
    for pattern, good in ((_PERSON_ID, "sun"), (_ID, "sign_off"), (_NAME, "ci-bot"),
                          (_TOKEN, f"{PREFIX}_{'0' * 16}_{'A' * 43}")):
        assert pattern.fullmatch(good) and not pattern.fullmatch(good + "\n")
        assert pattern.match(good + "\n")          # what `match` with `$` let through before
