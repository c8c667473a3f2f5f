"""Attacks as an unlucky user and a broken provider would, through the real CLI (run by
``scripts/attack.py``).

Each attack is a named function that sets up a real project in a temporary folder (and, for a
provider fault, a misbehaving server on 127.0.0.1), runs ``shipyard``, and returns
``(held, reason)``. Prints ``name → held`` or ``name → broke (reason)``; exits 1 if any broke.
Nothing is sent outside 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ["SHIPYARD_BLOCK_MODEL_REQUESTS"] = "1"  # no attack reaches a real model

from attacklib import Outcome, attack, broke, held  # noqa: E402

from fixtures.openai_server import serve  # noqa: E402

SHIPYARD = str(Path(sys.executable).parent / "shipyard")
Result = tuple[bool, str]
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
) + "task: *i\nacceptance: [{id: x, text: *i}]\n"  # fmt: skip
SPEC = """task: add numbers
acceptance:
  - id: add
    text: add(2, 3) is 5
checks:
  tests:
    required:
      - id: tests/test_calc.py::test_add
        covers: [add]
"""


def shipyard(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 90):
    environ = {**os.environ, **(env or {})}
    try:
        return subprocess.run(
            [SHIPYARD, *args], cwd=cwd, env=environ, capture_output=True, text=True,
            timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return None


def project(config: str = '[commands]\ntest = "python -m pytest -q"\n') -> Path:
    path = Path(tempfile.mkdtemp(prefix="shipyard-attack-")) / "p"
    (path / "tests").mkdir(parents=True)
    (path / "shipyard.toml").write_text(config)
    (path / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (path / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
    )
    (path / "spec.yaml").write_text(SPEC)
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "start"],
    ):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)  # fmt: skip
    return path


def expect(proc, code: int, *says: str) -> Result:
    if proc is None:
        return False, "hung past its timeout"
    out = proc.stdout + proc.stderr
    if "Traceback" in out:
        return False, f"a traceback: {out.strip().splitlines()[-1]}"
    if proc.returncode != code:
        return False, f"exit {proc.returncode}, not {code}: {out.strip()[-200:]}"
    missing = [s for s in says if s not in out]
    return (False, f"the message does not say {missing}") if missing else (True, "")


# -- input ---------------------------------------------------------------------------------------


def alias_bomb_spec() -> Result:
    path = project()
    (path / "spec.yaml").write_text(BOMB)
    return expect(shipyard("verify", cwd=path, timeout=30), 2, "spec.yaml", "aliases expand")


def junit_outside_is_not_deleted() -> Result:
    victim = Path(tempfile.mkdtemp()) / "victim.xml"
    victim.write_text("precious")
    path = project(f'[commands]\ntest = "true"\njunit = "{victim}"\n')
    held, why = expect(shipyard("verify", cwd=path), 2, "commands.junit")
    if not victim.exists():
        return False, f"{victim} was deleted"
    return held, why


def nul_in_a_command() -> Result:
    path = project('[commands]\ntest = "pytest\\u0000"\n')
    return expect(shipyard("verify", cwd=path), 2, "commands.test", "NUL")


def equals_in_an_env_name() -> Result:
    path = project('[commands]\ntest = "python -m pytest -q"\n[app]\nstart = "x"\n'
                   'env = { "A=B" = "1" }\n')  # fmt: skip
    return expect(shipyard("verify", cwd=path), 2, "app.env", "'A=B'")


def empty_app_start() -> Result:
    path = project('[commands]\ntest = "python -m pytest -q"\n[app]\nstart = ""\n')
    return expect(shipyard("verify", cwd=path), 2, "app.start", "is empty")


def nul_in_acceptance_text() -> Result:
    path = project()
    (path / "spec.yaml").write_text(SPEC.replace("add(2, 3) is 5", '"add\\0"'))
    return expect(shipyard("verify", cwd=path), 2, "acceptance[0].text", "NUL")


def fifo_as_spec() -> Result:
    path = project()
    fifo = path.parent / "spec.fifo"
    os.mkfifo(fifo)
    return expect(shipyard("verify", "--spec", str(fifo), cwd=path, timeout=20), 2,
                  "not a regular file")  # fmt: skip


def dev_zero_as_spec() -> Result:
    return expect(shipyard("verify", "--spec", "/dev/zero", cwd=project(), timeout=20), 2,
                  "not a regular file")  # fmt: skip


def damaged_ledger() -> Result:
    path = project()
    made = shipyard("memory", "add", "a fact", cwd=path)
    db = path / ".shipyard" / "shipyard.db"
    if made is None or made.returncode != 0 or not db.is_file():
        return False, "could not make a ledger to damage"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    data = db.read_bytes()
    db.write_bytes(data[:100] + b"\xa5" * (len(data) - 100))
    for args in (("stats",), ("status",), ("log", "r-x"), ("report", "r-x"), ("resume", "r-x")):
        held, why = expect(shipyard(*args, cwd=path), 3, "the ledger is damaged", "mv ")
        if not held:
            return False, f"{args[0]}: {why}"
    return True, ""


# -- providers -----------------------------------------------------------------------------------


def _with_server(
    plan: Callable, config: str, *says: str, env: dict[str, str] | None = None
) -> Result:
    with serve() as server:
        plan(server)
        text = config.format(url=server.base_url)
        path = project('[commands]\ntest = "python -m pytest -q"\n' + text)
        environ = {k: v.format(url=server.base_url) for k, v in (env or {}).items()}
        proc = shipyard("run", "add", "--spec", "spec.yaml", "--yes", cwd=path, env=environ)
        says = tuple(s.format(url=server.base_url) for s in says)
        return expect(proc, 3, "paused", "shipyard resume", *says)


LOCAL = ('[models]\ndefault = "local:m"\nretries = 1\nbackoff = 0.01\nrequest_timeout = 2\n'
         '[models.providers.local]\nbase_url = "{url}"\n')  # fmt: skip
NO_CHOICES = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}


def empty_choices() -> Result:
    return _with_server(lambda s: s.raw(NO_CHOICES, times=2), LOCAL,
                        "provider local", "'m'", "{url}", "malformed")  # fmt: skip


def chat_answer_to_responses() -> Result:
    config = '[models]\ndefault = "openai:m"\nretries = 0\nbackoff = 0.01\n'
    env = {"OPENAI_BASE_URL": "{url}", "OPENAI_API_KEY": "sk-x"}
    return _with_server(lambda s: s.reply("hello"), config, "warning", "openai-chat:m", env=env)


def trickling_server() -> Result:
    return _with_server(lambda s: s.trickle(300, times=2), LOCAL, "timed out", "{url}")


INPUT_ATTACKS: list[Callable[[], Result]] = [
    alias_bomb_spec, junit_outside_is_not_deleted, nul_in_a_command, equals_in_an_env_name,
    empty_app_start, nul_in_acceptance_text, fifo_as_spec, dev_zero_as_spec, damaged_ledger,
    empty_choices, chat_answer_to_responses, trickling_server,
]  # fmt: skip


def _register(fn: Callable[[], Result]) -> None:
    """Each attack joins ``attack.py``'s list, under its own name."""

    def run(_tmp: Path) -> Outcome:
        ok, why = fn()
        return held(why or "a clear error, nothing lost") if ok else broke(why)

    run.__name__ = fn.__name__
    attack(run)


for _fn in INPUT_ATTACKS:
    _register(_fn)
