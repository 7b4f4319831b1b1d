"""Several real processes issue, renew, hold, release, revoke and generate CRLs against one database
at once (SQLite in WAL mode, and PostgreSQL); the `yinxin` command generates CRLs beside them.

Afterwards: no serial twice, no application issued twice, at most one active personal certificate
per identity number, every revocation a worker reported is in the database, every CRL lists exactly
what was revoked when it was made (the audit log gives the order of commits) and every delta what
changed since its base, CRL numbers strictly increase, OpenSSL verifies the last CRL and reads the
OCSP answers, and `yinxin audit verify` passes.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from asn1crypto import crl as asn1_crl

from pki.clock import SystemClock

from ca_helpers import PASSWORD, World, apply_and_issue, openssl, sql, yinxin, session_env
from pg_fixture import backend_name, prepare_home_database  # noqa: F401 - fixture

WORKER = Path(__file__).resolve().parent / "crash_worker.py"
WORKERS = 4
OPS = 12
ENV = {"YINXIN_CA_PASSWORD": PASSWORD.decode()}


def _crl_entries(der: bytes) -> dict[str, str | None]:
    """serial (lower-case hex) → reason name, read with asn1crypto."""
    crl = asn1_crl.CertificateList.load(der)
    out: dict[str, str | None] = {}
    for entry in crl["tbs_cert_list"]["revoked_certificates"]:
        reason = None
        for ext in entry["crl_entry_extensions"]:
            if ext["extn_id"].native == "crl_reason":
                reason = ext["extn_value"].native
        out[f"{entry['user_certificate'].native:x}"] = reason
    return out


def _expected_states(events: list[tuple]) -> list[tuple[int, str, dict[str, str]]]:
    """Replay the audit log: (seq, CRL target, serial → 'revoked'/'held' at that moment) per CRL event."""
    state: dict[str, str] = {}
    crls = []
    for seq, action, target, details in events:
        serial = target.split(":", 1)[1] if ":" in target else ""
        if action == "certificate.revoke":
            state[serial] = "revoked"
        elif action == "certificate.hold":
            state[serial] = "held"
        elif action == "certificate.release":
            state.pop(serial, None)
        elif action == "certificate.issued":
            info = json.loads(details)
            if info.get("kind") in ("renew", "rekey") and info.get("predecessor"):
                state[info["predecessor"]] = "revoked"
        elif action in ("crl.full", "crl.delta"):
            crls.append((seq, target, dict(state)))
    return crls


def test_processes_at_once(backend_name: str, tmp_path: Path) -> None:  # noqa: F811
    home = tmp_path / "home"
    prepare_home_database(home, backend_name=backend_name)
    w = World(home, tmp_path / "files", SystemClock())
    w.init_ca("ec", "ecdsa-p256")
    for i in range(4):
        apply_and_issue(w, ca="ec", profile="organization", subject=f"/C=CN/O=Seed/CN=seed{i}",
                        generate_key_out=tmp_path / f"seed{i}.key")
    race_apps = []
    for i in range(4):
        app = w.ra.apply(ca="ec", profile="organization", subject=f"/C=CN/O=Race/CN=race{i}", actor=w.person("alice"),
                         generate_key_out=tmp_path / f"race{i}.key", key_password=b"k")
        w.ra.approve(app.id, actor=w.officer("bob"), comment="race")
        race_apps.append(app.id)
    assert yinxin(home, "ca", "crl", "--ca", "ec", "--out", tmp_path / "base.crl", env={**ENV,
                                                                                        **session_env(home)}).code == 0
    keys = tmp_path / "keys"
    keys.mkdir()
    logs = [tmp_path / f"worker{i}.log" for i in range(WORKERS)]
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(home), str(i), str(OPS), str(logs[i]),
                               "--keys", str(keys)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(WORKERS)]
    cli_results = []

    def cli_crls() -> None:       # the command line at the same time
        for n in range(3):
            cli_results.append(yinxin(home, "ca", "crl", "--ca", "ec", *(["--delta"] if n == 1 else []),
                                      "--out", tmp_path / f"cli{n}.crl", env={**ENV, **session_env(home)}))

    thread = threading.Thread(target=cli_crls)
    thread.start()
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()
    thread.join()
    assert all(r.code == 0 for r in cli_results), cli_results
    entries = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
    done = Counter(e["op"] for e in entries if "refused" not in e)
    assert done["issue"] >= 3 and done["revoke"] + done["hold"] >= 2 and done["crl"] >= 1, done
    db = w.db_path()

    # serials: never twice; every logged issuance is one certificate
    serials = [s for (s,) in sql(db, "SELECT serial FROM certificates")]
    assert len(serials) == len(set(serials))
    issued_logged = [e["serial"] for e in entries if e["op"] in ("issue", "race", "rekey") and "refused" not in e]
    assert len(issued_logged) == len(set(issued_logged)) and set(issued_logged) <= set(serials)
    # an application is issued once, whoever raced for it
    for app_id in race_apps:
        live = sql(db, "SELECT serial, status FROM certificates WHERE application_id=?", (app_id,))
        assert len(live) <= 1, live
        winners = [e for e in entries if e["op"] == "race" and e.get("application") == app_id]
        assert len(winners) == len(live)
    assert not sql(db, "SELECT application_id FROM certificates WHERE application_id IS NOT NULL "
                       "GROUP BY application_id HAVING count(*) > 1")
    # one person, one certificate: at most one live personal certificate and one pending application
    assert not sql(db, "SELECT id_number FROM certificates WHERE profile='person' AND "
                       "status IN ('reserved','issued','held') GROUP BY id_number HAVING count(*) > 1")
    assert not sql(db, "SELECT id_number FROM applications WHERE profile='person' AND "
                       "state IN ('submitted','approved') GROUP BY id_number HAVING count(*) > 1")
    # no lost revocation; superseded predecessors revoked
    for e in entries:
        if e["op"] == "revoke" and "refused" not in e:
            assert sql(db, "SELECT status FROM certificates WHERE serial=?", (e["serial"],)) == [("revoked",)]
        if e["op"] == "rekey" and "refused" not in e:
            assert sql(db, "SELECT status FROM certificates WHERE serial=?", (e["predecessor"],)) == [("revoked",)]
    assert sql(db, "SELECT count(*) FROM certificates WHERE status='reserved'") == [(0,)]

    # CRLs: numbers strictly increase in commit order; each lists what was revoked when it was made
    rows = sql(db, "SELECT number, delta_base, der FROM crls ORDER BY id")
    numbers = [n for n, _, _ in rows]
    assert numbers == sorted(set(numbers)) and len(numbers) >= 5
    by_number = {n: (base, bytes(der)) for n, base, der in rows}
    events = sql(db, "SELECT seq, action, target, details FROM audit_events ORDER BY seq")
    expected = _expected_states(events)
    assert len(expected) == len(rows)
    states_by_number = {}
    for seq, target, state in expected:
        number = int(target.rsplit(":", 1)[1])
        states_by_number[number] = state
        base, der = by_number[number]
        listed = _crl_entries(der)
        if base is None:
            assert set(listed) == set(state), (number, set(listed) ^ set(state))
            for serial, what in state.items():
                assert (listed[serial] == "certificate_hold") == (what == "held")
        else:
            before = states_by_number[base]
            changed = {s for s in set(state) | set(before) if state.get(s) != before.get(s)}
            assert changed <= set(listed), (number, changed - set(listed))
            for serial in changed:
                if serial in state:
                    assert listed[serial] == ("certificate_hold" if state[serial] == "held" else listed[serial])
                else:
                    assert listed[serial] == "remove_from_crl"
    # OpenSSL verifies the newest full CRL and finds every revoked certificate in it
    final = tmp_path / "final.crl"
    assert yinxin(home, "ca", "crl", "--ca", "ec", "--out", final, env={**ENV, **session_env(home)}).code == 0
    ca_pem = w.ca_pem("ec")
    text = openssl("crl", "-inform", "DER", "-in", final, "-CAfile", ca_pem, "-text").stderr.decode() + \
        openssl("crl", "-inform", "DER", "-in", final, "-CAfile", ca_pem, "-noout").stderr.decode()
    assert "verify OK" in text
    listed = openssl("crl", "-inform", "DER", "-in", final, "-text", "-noout").stdout.decode().upper()
    revoked = [s for (s,) in sql(db, "SELECT serial FROM certificates WHERE status IN ('revoked','held')")]
    for serial in revoked:
        assert serial.upper() in listed.replace(":", "")
    # OCSP answers the same, read by openssl
    good = [s for (s,) in sql(db, "SELECT serial FROM certificates WHERE status='issued' AND profile != 'subca'")]
    sample = revoked[:3] + good[:2]
    req, resp = tmp_path / "req.der", tmp_path / "resp.der"
    ids = [x for s in sample for x in ("-serial", f"0x{s}")]
    openssl("ocsp", "-issuer", ca_pem, *ids, "-reqout", req)
    assert yinxin(home, "ca", "ocsp", "--ca", "ec", "--reqin", req, "--respout", resp, env=ENV).code == 0
    answer = openssl("ocsp", "-respin", resp, "-issuer", ca_pem, "-VAfile", ca_pem, *ids, "-no_nonce",
                     check=False)
    out = (answer.stdout + answer.stderr).decode()
    assert "Response verify OK" in out
    for serial in revoked[:3]:
        assert f"0x{serial}: revoked" in out.replace(f"0x{serial.upper()}", f"0x{serial}")
    for serial in good[:2]:
        assert f"0x{serial}: good" in out.replace(f"0x{serial.upper()}", f"0x{serial}")
    # and the audit chain, through the command line
    verify = yinxin(home, "audit", "verify")
    assert verify.code == 0 and "audit log OK" in verify.out, verify
