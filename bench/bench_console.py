"""The web console and the HTTP API under load, each beside its reference measured in the same run.

    python bench/bench_console.py [--files 48] [--workers 2] [--wrk-seconds 10] [--json]

1. **API stamping**: 1-page PDFs sealed through ``POST /api/v1/seals/{name}/stamp`` by 4 concurrent
   clients, each on one keep-alive connection (multipart upload, the sealed PDF back), against
   `SealService.stamp_many` over the same files in the same home (processes=2, the library's batch
   path: one password check, the key loaded once per worker).  Both seal with the same SM2 seal at the
   same place; the API also checks the bearer token, the seal's custodian and password on every
   request and audits every stamp.  Goal (issue 15): the API at ≥ 0.7× the library's rate.
2. **Page rendering**: pages 1 and 100 of a 100-page document through
   ``GET /documents/{id}/pages/{n}.png`` (a logged-in session): three first views of page 1 — right
   after the console stored the document (drawn ahead in the background: the request may wait for that
   drawing), of a document the library stored (nothing drawn ahead: read, checked, opened, drawn), and
   a second after the reader's 待办 page listed such a document; then the first view with the cache
   emptied, views with the picture cache emptied before each (PDFium renders, PNG written to the
   cache), and cached views.  Goal: p99 ≤ 150 ms.
3. **待办 over the API**: ``GET /api/v1/todo`` (a person with 20 documents waiting) by `wrk`, offered
   at 100 and at 500 requests/s on a schedule (`bench/pacing.py`: each wrk thread's requests are due
   at fixed intervals, whatever the response times) over 10 connections for `--wrk-seconds`, loopback
   only; wrk's latency distribution (p50, p90, p99) and the requests that started late (every
   connection busy: the rate was then not offered).  Goal: p99 ≤ 20 ms at 500 req/s.  Before it, 500
   requests one after another on one connection, and the CPU time (user + system, from /proc) the
   console's processes spent on them: CPU ms per request, which the machine's other load barely moves.

Everything runs in a fresh temporary home (SQLite) with its own CA and seal; the server is the real
`yinxin console` with `--workers`.  The load average is printed before and after.
"""
from __future__ import annotations

import argparse
import warnings
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pacing import LATE_SUM, paced_delay  # noqa: E402

ORG = "北京市测试局"
ADMIN_PW = b"Admin-Passphrase-2026"
CA_PW = b"Ca-Password-2026!"
SEAL_INITIAL = b"Initial-Seal-Pw-1"
SEAL_PW = b"Custodian-Pw-2026#"


def loadavg() -> str:
    return open("/proc/loadavg").read().split(" ")[:3].__str__()


def setup(home_dir: Path) -> dict[str, Any]:
    """A home: the example bureau (signing nothing: the benchmark measures the console, not the
    decisions), an SM2 CA, the bureau's seal with wang as its custodian, API tokens for wang and chen."""
    import yaml

    import docflow  # noqa: F401
    from docflow import DocumentFlow
    from pki.accounts.accounts import Accounts
    from pki.accounts.testing import actor_for_tests
    from pki.accounts.tokens import ApiTokens
    from pki.ca import CertificateAuthority
    from pki.home import Home
    from seal.records import SealRegistry
    home = Home.open(home_dir)
    accounts = Accounts.of(home)
    accounts.create("root", name="管理员", roles=("admin",), password=ADMIN_PW, actor=None)
    admin = accounts.resume(accounts.authenticate("root", ADMIN_PW).token)
    ca_admin = actor_for_tests(home, "ca-admin", roles=("ca_operator", "seal_admin"))
    ra = actor_for_tests(home, "ra", roles=("ra_officer",))
    authority = CertificateAuthority(home)
    authority.init_ca(name="root-ca", subject="/C=CN/O=bench/CN=Bench Root", algorithm="sm2", password=CA_PW,
                      actor=ca_admin)
    bureau = yaml.safe_load((ROOT / "policies" / "examples" / "beijing-test-bureau.yaml").read_text("utf-8"))
    bureau["seal"] = "bench-seal"
    bureau["signatures"] = "none"
    flow = DocumentFlow(home)
    flow.load_organisation_data(bureau, actor=admin, source="bench")
    registry = SealRegistry(home)
    registry.create(name="bench-seal", organisation=ORG, seal_type="official", custodian="wang", ca="root-ca",
                    password=SEAL_INITIAL, ca_password=CA_PW, actor=ca_admin, approver=ra)
    wang = actor_for_tests(home, "wang")
    registry.change_password("bench-seal", SEAL_INITIAL, SEAL_PW, actor=wang)
    tokens = ApiTokens.of(home)
    out = {"home": home, "flow": flow, "wang": wang,
           "wang_token": tokens.issue("wang", name="bench", actor=wang).text,
           "chen_token": tokens.issue("chen", name="bench", actor=actor_for_tests(home, "chen")).text,
           "sun_token": tokens.issue("sun", name="bench", actor=actor_for_tests(home, "sun")).text}
    return out


def one_page(i: int) -> bytes:
    from docflow.sample import make_document_pdf
    return make_document_pdf(f"关于基准测试的第{i}号通知", ORG, "2026年5月8日", [f"第{i}份文件。" * 8, "特此通知。"])


def hundred_pages() -> bytes:
    from docflow.sample import make_document_pdf
    paragraph = "为推进电子政务建设，经研究，决定在全市开展电子印章试点工作。现将有关事项通知如下。" * 3
    return make_document_pdf("关于一百页文件的通知", ORG, "2026年5月8日", [paragraph] * 520)


class Server:
    def __init__(self, home: Path, workers: int) -> None:
        env = dict(os.environ, YINXIN_HOME=str(home))
        script = Path(sys.executable).parent / "yinxin"
        self.log = open(home.parent / "console.log", "wb")
        self.proc = subprocess.Popen([str(script), "--json", "console", "--port", "0", "--workers", str(workers),
                                      "--log-level", "warning"], stdout=subprocess.PIPE, stderr=self.log, env=env,
                                     start_new_session=True)
        info = json.loads(self.proc.stdout.readline())
        self.host, self.port = info["host"], info["port"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the console did not start")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


def server_cpu_ms(server: Server) -> float:
    """CPU time (user + system) used so far by the console's processes (its session: the parent and
    its workers), in ms."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == server.proc.pid:       # field 6: the session id
            total += int(fields[11]) + int(fields[12])
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def multipart(fields: list[tuple[str, str]], pdf: bytes) -> tuple[bytes, str]:
    boundary = "----bench" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
    out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.pdf\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode() + pdf + b"\r\n" + f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def bench_stamping(ctx: dict[str, Any], server: Server, files: list[Path], out: Path) -> dict[str, Any]:
    from seal.pdf_placement import AtPosition
    from seal.service import SealService
    fields = [("password", SEAL_PW.decode()), ("page", "1"), ("x_mm", "150"), ("y_mm", "60")]
    bodies = [multipart(fields, f.read_bytes()) for f in files]
    headers = {"Authorization": f"Bearer {ctx['wang_token']}"}

    def client(share: list[tuple[bytes, str]], errors: list[str]) -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
        for body, ctype in share:
            conn.request("POST", "/api/v1/seals/bench-seal/stamp", body=body,
                         headers={**headers, "Content-Type": ctype})
            response = conn.getresponse()
            data = response.read()
            if response.status != 200 or not data.startswith(b"%PDF"):
                errors.append(f"{response.status} {data[:200]!r}")
        conn.close()

    # one warm-up request per worker process (imports, the first CMS template), not counted
    warm: list[str] = []
    for _ in range(4):
        client(bodies[:1], warm)
    errors: list[str] = []
    shares = [bodies[i::4] for i in range(4)]
    threads = [threading.Thread(target=client, args=(share, errors)) for share in shares]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    api_seconds = time.perf_counter() - start
    if errors or warm:
        raise SystemExit(f"API stamping failed: {(errors or warm)[:3]}")
    service = SealService(ctx["home"])
    start = time.perf_counter()
    items = service.stamp_many("bench-seal", SEAL_PW, files, out, placement=AtPosition(1, 150, 60),
                               actor=ctx["wang"], processes=2)
    lib_seconds = time.perf_counter() - start
    if not all(i.ok for i in items):
        raise SystemExit("stamp_many failed")
    n = len(files)
    return {"files": n, "api_per_s": n / api_seconds, "library_per_s": n / lib_seconds,
            "ratio": (n / api_seconds) / (n / lib_seconds)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def bench_pages(ctx: dict[str, Any], server: Server, rounds: int) -> dict[str, Any]:
    from console.security import SessionCookie
    from pki.accounts.testing import session_for_tests
    pdf = hundred_pages()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=120)

    def create(title: str, data: bytes) -> dict[str, Any]:
        """A new document through the API (sun's token), its JSON."""
        body, ctype = multipart([("kind", "upward"), ("title", title), ("to", "chen")], data)
        conn.request("POST", "/api/v1/documents", body=body,
                     headers={"Authorization": f"Bearer {ctx['sun_token']}", "Content-Type": ctype})
        response = conn.getresponse()
        made = json.loads(response.read())
        if response.status != 201:
            raise SystemExit(f"could not create {title}: {made}")
        return made

    created = create("关于一百页文件的通知", pdf)
    doc_id, sha = created["id"], created["versions"][0]["sha256"]
    pages = len(__import__("pikepdf").open(__import__("io").BytesIO(pdf)).pages)
    if pages < 100:
        raise SystemExit(f"the long document has {pages} pages, not 100")
    session = session_for_tests(ctx["home"], "chen")
    cookie = SessionCookie(session.id, session.token).encode()
    cache = ctx["home"].path / "cache" / "pages" / sha[:2] / sha
    headers = {"Cookie": f"__Host-yinxin={cookie}"}

    def picture(doc: int, page: int) -> float:
        """ms to fetch one page's picture (checked to be a PNG)."""
        start = time.perf_counter()
        conn.request("GET", f"/documents/{doc}/pages/{page}.png?v=1&zoom=1", headers=headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.status != 200 or not data.startswith(b"\x89PNG"):
            raise SystemExit(f"document {doc} page {page}: {response.status} {data[:200]!r}")
        return elapsed

    out: dict[str, Any] = {"pages": pages}

    def variant(n: int) -> bytes:
        """The long document with a comment after its end: other bytes (another SHA-256), same pages."""
        return pdf + f"\n% bench copy {n}\n".encode()

    # first views of page 1, `firsts` documents of each kind (each one's first view in any worker):
    # (a) right after the console stored it — page 1 is drawn ahead in the background, the request
    #     may find it drawn or wait for the drawing (in this worker or the other); and the same after
    #     the document's HTML page, the order in which a browser asks;
    # (b) stored by the library (as `yinxin doc new` does): nothing drawn ahead, read, checked, opened
    #     and drawn on request; (c) the same, a second after the reader's 待办 page listed them
    from pki.accounts.testing import actor_for_tests
    sun = actor_for_tests(ctx["home"], "sun")
    firsts = 5
    stored, opened = [], []
    for n in range(2 * firsts):
        made = create(f"关于一百页文件的通知{n}", variant(n))
        if n < firsts:
            stored.append(picture(made["id"], 1))
        else:       # the browser's order: the document's page, then the pictures it shows
            conn.request("GET", f"/documents/{made['id']}", headers=headers)
            answer = conn.getresponse()
            if answer.status != 200:
                raise SystemExit(f"document page {made['id']}: {answer.status}")
            answer.read()
            opened.append(picture(made["id"], 1))
    elsewhere = []
    for n in range(2 * firsts, 3 * firsts):
        doc = ctx["flow"].new_document(kind="upward", title=f"关于一百页文件的通知{n}", pdf=variant(n), actor=sun,
                                       to="chen")
        elsewhere.append(picture(doc.id, 1))
    docs = [ctx["flow"].new_document(kind="upward", title=f"关于一百页文件的通知{n}", pdf=variant(n), actor=sun,
                                     to="chen").id for n in range(3 * firsts, 4 * firsts)]
    conn.request("GET", "/todo", headers=headers)
    answer = conn.getresponse()
    listing = answer.read()
    if answer.status != 200 or not all(f'data-doc-id="{d}"'.encode() in listing for d in docs):
        raise SystemExit("the 待办 page does not list the documents")
    time.sleep(1.0)
    listed = [picture(d, 1) for d in docs]
    for key, values in (("stored_first", stored), ("stored_page_first", opened), ("elsewhere_first", elsewhere),
                        ("listed_first", listed)):
        out[key] = {"median_ms": statistics.median(values), "max_ms": max(values), "all_ms": values}
    for page in (1, 100):
        shutil.rmtree(cache, ignore_errors=True)
        first = picture(doc_id, page)
        cold, warm = [], []
        for _ in range(rounds):
            for png in cache.glob("p*.png"):
                png.unlink()
            cold.append(picture(doc_id, page))
            warm.append(picture(doc_id, page))
        out[f"page_{page}"] = {"first_ms": first, "cold_p50_ms": statistics.median(cold),
                               "cold_p99_ms": percentile(cold, 99), "cached_p50_ms": statistics.median(warm),
                               "cached_p99_ms": percentile(warm, 99)}
    conn.close()
    return out


PACE = """-- {rate} requests/s over {connections} connections on a schedule (bench/pacing.py)
request = function() return wrk.format("GET", "/api/v1/todo", {{["Authorization"] = "Bearer {token}"}}) end
threads = {{}}
function setup(thread) table.insert(threads, thread) end
{delay}
{late_sum}
function done(summary, latency, requests)
  io.write(string.format("@@late %d\\n", yx_late()))
end
"""


def bench_todo(ctx: dict[str, Any], server: Server, seconds: int, tmp: Path, rate: int = 500) -> dict[str, Any]:
    from docflow.sample import make_document_pdf
    from pki.accounts.testing import actor_for_tests
    flow, sun = ctx["flow"], actor_for_tests(ctx["home"], "sun")
    pdf = make_document_pdf("待办", ORG, "2026年5月8日", ["待办。"])
    if not ctx.get("todo_made"):
        for i in range(20):
            flow.new_document(kind="upward", title=f"待办第{i}件", pdf=pdf, actor=sun, to="chen")
        ctx["todo_made"] = True
    connections = 10
    threads = 2
    script = tmp / "pace.lua"
    script.write_text(PACE.format(rate=rate, connections=connections, delay=paced_delay(rate, threads),
                                  late_sum=LATE_SUM, token=ctx["chen_token"]))
    check = http.client.HTTPConnection(server.host, server.port, timeout=10)
    check.request("GET", "/api/v1/todo", headers={"Authorization": f"Bearer {ctx['chen_token']}"})
    answer = check.getresponse()
    items = len(json.loads(answer.read())["items"])
    # CPU per request: sequential requests on one keep-alive connection, the server's CPU time over them
    for _ in range(50):
        check.request("GET", "/api/v1/todo", headers={"Authorization": f"Bearer {ctx['chen_token']}"})
        check.getresponse().read()
    sequential = 500
    cpu0, wall0 = server_cpu_ms(server), time.perf_counter()
    for _ in range(sequential):
        check.request("GET", "/api/v1/todo", headers={"Authorization": f"Bearer {ctx['chen_token']}"})
        answer = check.getresponse()
        if answer.status != 200:
            raise SystemExit(f"GET /api/v1/todo: {answer.status}")
        answer.read()
    cpu_ms = (server_cpu_ms(server) - cpu0) / sequential
    sequential_ms = (time.perf_counter() - wall0) * 1000 / sequential
    check.close()
    cpu0 = server_cpu_ms(server)
    proc = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency", "-s",
                           str(script), f"http://{server.host}:{server.port}/api/v1/todo"],
                          capture_output=True, text=True, timeout=seconds + 60)
    text = proc.stdout

    def ms(label: str) -> float:
        for line in text.splitlines():
            parts = line.split()
            if parts and parts[0] == label:
                value = parts[1]
                scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
                for unit in ("us", "ms", "s"):
                    if value.endswith(unit):
                        return float(value[:-len(unit)]) * scale[unit]
        raise SystemExit(f"wrk printed no {label} latency:\n{text}{proc.stderr}")

    rps = next(float(line.split()[1]) for line in text.splitlines() if line.startswith("Requests/sec"))
    total = next(int(line.split()[0]) for line in text.splitlines() if " requests in " in line)
    wrk_cpu_ms = (server_cpu_ms(server) - cpu0) / max(1, total)
    non2xx = next((int(line.split()[-1]) for line in text.splitlines() if "Non-2xx" in line), 0)
    late = next(int(line.split()[1]) for line in text.splitlines() if line.startswith("@@late"))
    return {"rate": rate, "late": late, "requests": total, "items": items, "requests_per_s": rps, "p50_ms": ms("50%"), "p90_ms": ms("90%"), "p99_ms": ms("99%"),
            "non_2xx": non2xx, "connections": connections, "seconds": seconds, "cpu_ms_per_request": cpu_ms,
            "sequential_ms": sequential_ms, "wrk_cpu_ms_per_request": wrk_cpu_ms}


def main() -> None:
    warnings.filterwarnings("ignore", message="DSA is deprecated")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=48, help="1-page PDFs to stamp (default 48)")
    parser.add_argument("--workers", type=int, default=2, help="console workers (default 2: the machine's cores)")
    parser.add_argument("--rounds", type=int, default=30, help="page renderings per page and kind (default 30)")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    before = loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="yinxin-bench-console-"))
    try:
        ctx = setup(tmp / "home")
        files = []
        (tmp / "in").mkdir()
        for i in range(args.files):
            path = tmp / "in" / f"doc-{i:03d}.pdf"
            path.write_bytes(one_page(i))
            files.append(path)
        ctx["home"].store.dispose()
        server = Server(tmp / "home", args.workers)
        try:
            (tmp / "out").mkdir()
            stamping = bench_stamping(ctx, server, files, tmp / "out")
            # 待办 before the pages: the long documents of the first views would join its list
            light = bench_todo(ctx, server, args.wrk_seconds, tmp, rate=100)
            todo = bench_todo(ctx, server, args.wrk_seconds, tmp, rate=500)
            pages = bench_pages(ctx, server, args.rounds)
        finally:
            server.stop()
        result = {"load_before": before, "load_after": loadavg(), "workers": args.workers, "stamping": stamping,
                  "pages": pages, "todo": todo, "todo_light": light}
        if args.json:
            print(json.dumps(result, indent=2))
            return
        s = stamping
        print(f"load average before {before}, after {result['load_after']}; console workers: {args.workers}")
        print(f"\n1. stamping {s['files']} 1-page PDFs (SM2 seal)")
        print(f"   API, 4 keep-alive clients   {s['api_per_s']:7.1f} /s")
        print(f"   SealService.stamp_many      {s['library_per_s']:7.1f} /s")
        print(f"   ratio API / library         {s['ratio']:7.2f}   goal ≥ 0.70: {'met' if s['ratio'] >= 0.7 else 'NOT met'}")
        print(f"\n2. page pictures of a {pages['pages']}-page document (zoom 1, 96 dpi)")
        worst = 0.0
        print("   first view of page 1 (median / max of 5 documents each):")
        for key, label in (("stored_first", "right after the console stored the document"),
                           ("stored_page_first", "the same, after the document's page (the browser's order)"),
                           ("elsewhere_first", "of a document the library stored (nothing drawn ahead)"),
                           ("listed_first", "a second after the reader's 待办 page listed it")):
            print(f"     {label:56s} {pages[key]['median_ms']:6.1f} / {pages[key]['max_ms']:6.1f} ms")
        for page in (1, 100):
            p = pages[f"page_{page}"]
            worst = max(worst, p["cold_p99_ms"], p["first_ms"], pages["stored_first"]["max_ms"],
                        pages["stored_page_first"]["max_ms"],
                        pages["elsewhere_first"]["max_ms"], pages["listed_first"]["max_ms"])
            print(f"   page {page:>3}: first view {p['first_ms']:6.1f} ms; rendered p50 {p['cold_p50_ms']:6.1f} "
                  f"p99 {p['cold_p99_ms']:6.1f} ms; cached p50 {p['cached_p50_ms']:5.1f} p99 {p['cached_p99_ms']:5.1f} ms")
        print(f"   goal p99 ≤ 150 ms: {'met' if worst <= 150 else 'NOT met'} (worst {worst:.1f} ms, first views included)")
        t = todo
        print(f"\n3. GET /api/v1/todo ({t['items']} items) with wrk, {t['connections']} connections, {t['seconds']} s each")
        for run in (light, todo):
            print(f"   paced at {run['rate']} req/s: {run['requests_per_s']:.0f} req/s; p50 {run['p50_ms']:.2f} ms, "
                  f"p90 {run['p90_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms; non-2xx {run['non_2xx']}; "
                  f"late {run['late']} of {run['requests']}; "
                  f"server CPU {run['wrk_cpu_ms_per_request']:.2f} ms/request")
        print(f"   one client, one after another: {t['sequential_ms']:.2f} ms/request, server CPU "
              f"{t['cpu_ms_per_request']:.2f} ms/request (all its processes)")
        print(f"   goal p99 ≤ 20 ms at 500 req/s: {'met' if t['p99_ms'] <= 20 and t['requests_per_s'] >= 0.98 * t['rate'] and t['late'] <= 0.01 * t['requests'] else 'NOT met'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
