"""Benchmark the knowledge store's read path on a large store.

    uv run python scripts/bench_knowledge.py [--entries 100000] [--lookups 2000] [--seed 7]

Builds a store with the real schema and ``knowledge.write`` (the import path, in transactions of
5,000) in a temporary folder, from a seeded random: mostly pitfalls, decisions, facts and
findings, 300 conventions and 30 commands, 100-600 characters of technical text each. Hidden
among them, for each of 50 tasks: five entries about the task (its distinctive words), a fact
superseded by another, and a review finding. The load takes ~13 minutes at 100,000 entries on
2 cores: each write scans the current entries of its kind (reported, not a target). Then:

1. recall: the planted entries that ``knowledge.relevant(conn, task, 2000)`` returns. Target 90%.
2. ``relevant`` latency over ``--lookups`` queries (tasks, tasks with a spec, random words, very
   common words) after 100 warm-up lookups: median, p95, p99, worst. Target p99 < 20 ms.
3. ``pitfall_for`` latency, by exact fingerprint and by near match on the topic.
4. the database on disk after ``PRAGMA wal_checkpoint(TRUNCATE)``. Target < 100 MB.

Every answer of ``relevant`` must keep to its budget and hand no superseded entry and no
finding. Exit 1 when a target is missed or an answer breaks those rules.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from itertools import accumulate
from pathlib import Path

from shipyard.store import knowledge
from shipyard.store.db import open_db
from shipyard.store.knowledge import Entry

BUDGET = 2000
TARGET_P99_MS, TARGET_MB, TARGET_RECALL = 20.0, 100.0, 0.9
BATCH, PLANTED, CONVENTIONS, COMMANDS = 5000, 5, 300, 30
# each task: a query; its *distinctive* words are in the planted entries and nowhere else
TASKS = [(task.replace("*", ""), task.split("*")[1::2]) for task in """\
add a *refund* endpoint to the orders API; let support staff *impersonate* a customer account
export the *monthly* ledger as a *spreadsheet*
email a *reminder* before a *subscription* *renews*; accept *gift* cards at checkout
print a *barcode* on the *packing* *slip*; *throttle* *password* reset requests per client
translate the *storefront* into *Portuguese*; add a *dark* *theme* *toggle* to the settings page
*archive* *inactive* tenants after *ninety* days
add a second *factor* login with *authenticator* apps
compute sales tax for *Canadian* *provinces*; resize uploaded *avatars* into *thumbnails*
*deduplicate* customer records; show a *loyalty* *points* balance on profiles
*geocode* shipping addresses with *postcodes*; stream large report *downloads* in *chunks*
text the warehouse by *SMS* when *stock* runs low; schedule *recurring* invoices every *quarter*
let customers *split* a payment across two *cards*; keep an audit *trail* of permission changes
share *wishlists* by link; estimate delivery dates from *carrier* *transit* times
add *fuzzy* matching to product search; honour *GDPR* *erasure* requests for user data
render invoices as *PDF* with the company *logo*; show a *maintenance* mode *banner*
import *supplier* price lists from *FTP*; cap *simultaneous* *logins* per user at three
track the *referral* source of each *signup*; post *Slack* alerts on failed *deploys*
convert prices with daily *exchange* *rates*; *bulk* edit product *variants*
add an *onboarding* *checklist* for new *merchants*; round totals to five *cents* in *Switzerland*
generate a *sitemap* for public product pages; add *keyboard* *shortcuts* to the admin dashboard
store *consent* for *marketing* cookies; retry failed *payouts* to *sellers* overnight
show a *countdown* timer for *flash* sales; *anonymise* IP addresses in access logs
add a *QR* code to event *tickets*; let *drivers* upload proof of delivery *photos*
estimate *carbon* *emissions* per shipment; compress archived *attachments* with *zstd*
add a skip link and *ARIA* labels for *accessibility*; sync *bookings* with Google *Calendar*
warn when a *voucher* in the *basket* is about to expire; support *RTL* layouts for *Arabic*
limit file uploads to *fifty* *megabytes*""".replace("\n", "; ").split("; ")]  # fmt: skip
COMMON, MODULES, TECH, VERBS, ADJ, ACTIONS = (words.split() for words in (
    "test api error fix add update value returns config file data user field client",
    """orders invoices billing accounts users profiles inventory warehouse shipping payments ledger
    reports catalog cart checkout coupons notifications emails scheduler jobs queue cache search
    pricing taxes currency audit permissions roles tenants uploads images exports imports metrics
    settings admin products customers sessions auth webhooks""",
    """request response handler middleware serializer validator schema model migration index query
    join transaction rollback commit fixture mock monkeypatch timeout deadlock retry backoff
    idempotency constraint decimal datetime timezone utc locale encoding unicode json yaml toml csv
    header cookie token jwt oauth cors csrf redis postgres sqlite alembic celery asyncio coroutine
    thread pool connection socket port docker compose environment secret import typing mypy ruff
    eslint typescript webpack vite react component props hook render snapshot selector playwright
    browser fetch graphql resolver mutation pagination cursor offset sort filter logger trace span
    worker cron lock mutex signal subprocess stdout stderr exit dependency lockfile version pin
    wheel venv router route view template form widget button modal dialog status enum dataclass
    pydantic factory builder adapter server proxy gateway buffer stream batch payload checksum
    hash uuid slug cache_key ttl""",
    """returns raises drops ignores truncates duplicates caches skips retries blocks leaks rounds
    parses rejects accepts overwrites reorders swallows misreads double-counts""",
    "empty null stale negative naive missing expired duplicated unsorted partial",
    """pin wrap move guard validate normalise sort await close reset mock patch rename debounce
    index cache invalidate commit""",
))  # fmt: skip
RARE = {w.lower().rstrip("s") for _, words in TASKS for w in words}
assert not RARE & {w.rstrip("s") for w in COMMON + MODULES + TECH + VERBS + ADJ + ACTIONS}
GATES, FAILS = ("tests",) * 6 + ("build", "lint", "types", "app"), "assertion timeout import type"
ERRORS = (
    "AssertionError: assert {n} == {m}", "KeyError: '{w}'", "TimeoutError: {w} after {n}s",
    "ImportError: cannot import name '{w}' from '{mod}'", "HTTP {n} from /api/{mod}/{w}",
    "sqlite3.IntegrityError: UNIQUE constraint failed: {mod}.{w}",
)  # fmt: skip


class Texts:
    """Technical prose from a seeded random; words drawn with Zipf-like weights."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.vocab = rng, COMMON + TECH + MODULES
        self.weights = list(accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(self.vocab))))

    def w(self) -> str:
        return self.rng.choices(self.vocab, cum_weights=self.weights)[0]

    def sentence(self, extra: Sequence[str] = ()) -> str:
        r, w, mod = self.rng, self.w, self.rng.choice(MODULES)
        words = r.choice([
            f"the {mod} {w()} {r.choice(VERBS)} the {w()} when {w()} is {r.choice(ADJ)}",
            f"{r.choice(ACTIONS)} the {w()} in src/{mod}/{w()}.py before the {w()}",
            f"{mod}.{w()}_{w()}() {r.choice(VERBS)} {w()} {w()}",
        ]).split()  # fmt: skip
        for word in extra:
            words.insert(r.randrange(len(words) + 1), word)
        return " ".join(words).capitalize() + "."

    def prose(self, head: str, extra: Sequence[str] = ()) -> str:
        """100-600 characters (more when the head and the extra words need it)."""
        text = f"{head} {self.sentence(extra)}"
        size = max(self.rng.randint(100, 600), len(text))
        while len(text) < size:
            text += " " + self.sentence()
        return text if len(text) == size else text[:size].rsplit(" ", 1)[0] + "."

    def entry(self, kind: str, extra: Sequence[str] = ()) -> Entry:
        r, mod = self.rng, self.rng.choice(MODULES)
        if kind != "pitfall":
            head = {"decision": "Decided:", "fact": f"The {mod} service:", "finding": "Review:"}
            role = {"decision": "planner", "finding": "reviewer"}.get(kind, "user")
            text = self.prose(head.get(kind, "Always:"), extra)
            return Entry(kind=kind, text=text, role=role)  # type: ignore[arg-type]
        gate, fail = r.choice(GATES), r.choice(FAILS.split())  # as learn.pitfalls_fixed writes
        check = f"tests/test_{mod}.py::test_{self.w()}_{self.w()}" if gate == "tests" else gate
        n, m = r.randint(1, 999), r.randint(1, 999)
        message = r.choice(ERRORS).format(n=n, m=m, w=self.w(), mod=mod)
        text = self.prose(f"When {gate} {check} fails ({fail}): {message}\nCause:", extra)
        return Entry(
            kind="pitfall", key=f"{r.getrandbits(64):016x}", role="diagnoser",
            text=text.replace(". ", "\nFix that then passed: ", 1), topic=f"{gate}|{check}|{fail}",
            data={"message": message, "gate": gate, "check": check, "kind": fail},
        )  # fmt: skip


def build(
    conn: sqlite3.Connection, n: int, rng: random.Random
) -> tuple[dict[int, set[int]], set[int], list[float]]:
    """The store. Returns the ids planted for each task, the ids never to be handed (superseded
    entries, findings) and each batch's seconds per entry."""
    texts = Texts(rng)
    background = [texts.entry("convention") for _ in range(CONVENTIONS)] + [
        Entry(kind="command", key=f"build {i}", text=f"npm run build --workspace packages/{m}",
              role="gates", evidence=f"the build-{i} gate passed, run 2025-0{i % 9 + 1}-ab{i}")
        for i, m in enumerate(MODULES[:COMMANDS], start=1)
    ]  # fmt: skip
    kinds = ["pitfall", "decision", "fact", "finding"]
    rest = n - len(background) - len(TASKS) * (PLANTED + 3)
    background += [texts.entry(k) for k in rng.choices(kinds, [40, 25, 15, 20], k=max(rest, 0))]
    order: list[tuple[int | None, Entry]] = [(None, e) for e in background]
    slots = sorted(rng.sample(range(len(background) + 1), len(TASKS)), reverse=True)
    for slot, (task, (_, words)) in zip(slots, reversed(list(enumerate(TASKS))), strict=True):
        extra = [w.lower() for w in words]
        planted = [texts.entry(rng.choice(kinds[:3]), extra) for _ in range(PLANTED)]
        old, new = texts.prose("Old:", extra), "Now: " + " ".join(extra)  # new supersedes old
        planted += [texts.entry("finding", extra)]
        planted += [Entry(kind="fact", key=f"task {task}", text=text) for text in (old, new)]
        order[slot:slot] = [(task, e) for e in planted]  # from the end: earlier slots stay put
    wanted: dict[int, set[int]] = {i: set() for i in range(len(TASKS))}
    never: set[int] = set()
    per_entry = []
    for at in range(0, len(order), BATCH):
        chunk, started = order[at : at + BATCH], time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        written = knowledge.write(conn, [e for _, e in chunk], imported=True)
        conn.execute("COMMIT")
        per_entry.append((time.perf_counter() - started) / len(chunk))
        for (task, entry), w in zip(chunk, written, strict=True):
            if w.replaced is not None:
                never.add(w.replaced)
            if task is not None and entry.kind == "finding":
                never.add(w.id)
            elif task is not None:
                wanted[task] = wanted[task] - {w.replaced} | {w.id}
    return wanted, never, per_entry


def broken(found: list[Entry], never: set[int], query: str) -> list[str]:
    """What is wrong with one answer of relevant() ([] when nothing)."""
    spent = sum(knowledge.tokens(knowledge.line(e)) for e in found)
    bad = [f"{spent} tokens > budget {BUDGET}"] if spent > BUDGET else []
    bad += [f"handed {e.kind} #{e.id}" for e in found if e.kind == "finding" or e.id in never]
    return [f"{query[:50]!r}: {b}" for b in bad]


def timings(label: str, seconds: list[float]) -> float:
    """Prints median, p95, p99 and worst in ms; returns p99."""
    ms = sorted(s * 1000 for s in seconds)
    p95, p99 = (ms[min(len(ms) - 1, round(p * (len(ms) - 1)))] for p in (0.95, 0.99))
    print(f"   {label:<32} median {statistics.median(ms):6.2f}  p95 {p95:6.2f}  p99 {p99:6.2f}"
          f"  worst {ms[-1]:6.2f} ms  ({len(ms)} calls)")  # fmt: skip
    return p99


def queries(n: int, rng: random.Random, texts: Texts) -> list[tuple[str, str]]:
    spec = "acceptance: the endpoint returns 200 and the totals match; tests cover the error path"
    make = {
        "task": lambda: rng.choice(TASKS)[0],
        "task + spec": lambda: f"{rng.choice(TASKS)[0]}\n{texts.prose('spec:')}\n{spec}",
        "random words": lambda: " ".join(texts.w() for _ in range(rng.randint(2, 8))),
        "very common words only": lambda: " ".join(rng.sample(COMMON, rng.randint(3, 8))),
    }
    return [(kind, make[kind]()) for kind in rng.choices(list(make), k=n)]


def target(label: str, ok: bool) -> bool:
    print(f"   target {label}: {'PASS' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}")  # fmt: skip
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    rng, problems, ok = random.Random(args.seed), [], True
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
        path = Path(tmp) / "shipyard.db"
        conn = open_db(path)
        conn.execute("PRAGMA cache_size = -500000")  # the load only: its scans stay in memory
        started = time.perf_counter()
        wanted, never, per_entry = build(conn, args.entries, rng)
        load = time.perf_counter() - started
        conn.close()
        conn = open_db(path)  # as a run opens it
        kinds = conn.execute("SELECT kind, COUNT(*) FROM knowledge GROUP BY kind ORDER BY 2")
        print("\nstore: " + ", ".join(f"{n:,} {k}" for k, n in kinds))
        print(f"   loaded in {load:.1f} s (with making up the text); knowledge.write took "
              f"{per_entry[0] * 1000:.2f} ms per entry in the first batch of {BATCH:,}, "
              f"{per_entry[-1] * 1000:.2f} ms in the last")  # fmt: skip

        print(f"\n1. recall of the planted entries, budget {BUDGET} tokens")
        hits = total = 0
        for i, (task, _) in enumerate(TASKS):
            found = knowledge.relevant(conn, task, BUDGET)
            problems += broken(found, never, task)
            hits, total = hits + len(wanted[i] & {e.id for e in found}), total + len(wanted[i])
        print(f"   {hits}/{total} returned for their task: recall {hits / total:.1%}")
        ok &= target(f">= {TARGET_RECALL:.0%}", hits / total >= TARGET_RECALL)

        print(f"\n2. relevant(conn, query, {BUDGET}) after 100 warm-up lookups")
        texts = Texts(random.Random(args.seed + 1))
        for _, query in queries(100, rng, texts):
            knowledge.relevant(conn, query, BUDGET)
        seconds: dict[str, list[float]] = {}
        for kind, query in queries(args.lookups, rng, texts):
            started = time.perf_counter()
            found = knowledge.relevant(conn, query, BUDGET)
            seconds.setdefault(kind, []).append(time.perf_counter() - started)
            problems += broken(found, never, query)
        p99 = timings("all queries", [s for values in seconds.values() for s in values])
        for kind, values in seconds.items():
            timings(f"  {kind}", values)
        ok &= target(f"p99 < {TARGET_P99_MS:.0f} ms", p99 < TARGET_P99_MS)

        rows = conn.execute(
            "SELECT key, topic, data FROM knowledge WHERE kind = 'pitfall'"
            " AND superseded_by IS NULL ORDER BY id"
        ).fetchall()
        rows = rng.sample(rows, min(500, len(rows)))
        print(f"\n3. pitfall_for(conn, fingerprint, topic, message), {len(rows)} pitfalls")
        for label, near in (("exact fingerprint", False), ("near match by topic", True)):
            seconds[label], matched = [], 0
            for row in rows:
                message = json.loads(row["data"])["message"] + " (again)"
                started = time.perf_counter()
                got = knowledge.pitfall_for(
                    conn, "?" if near else row["key"], row["topic"], message
                )
                seconds[label].append(time.perf_counter() - started)
                matched += got is not None and got.topic == row["topic"]
            timings(f"{label} ({matched} found)", seconds[label])

        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        files = sorted(p for p in Path(tmp).iterdir() if p.name.startswith(path.name))
        mb = sum(p.stat().st_size for p in files) / 1e6
        print(f"\n4. on disk: {mb:.1f} MB ({', '.join(p.name for p in files)})")
        ok &= target(f"< {TARGET_MB:.0f} MB", mb < TARGET_MB)
    for problem in problems[:20]:
        print(f"BROKEN: {problem}")
    if problems:
        print(f"{len(problems)} answers broke the rules (budget, superseded, findings)")
    print(f"\n{'PASS' if ok and not problems else 'FAIL'}")
    return 0 if ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
