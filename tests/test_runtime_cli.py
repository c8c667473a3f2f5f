"""CLI checks: exit codes, output, timeouts, env expansion, with and without a running app."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fixtures.runtime.support import TODO_APP, app_config, by_id, make_context, run_gate

PY = json.dumps(sys.executable)
GREET = json.dumps("import os, sys; print('hello', os.environ['WHERE']); sys.stderr.write('w\\n')")
BAD = json.dumps("import sys; print('usage: x'); print('oops', file=sys.stderr); sys.exit(2)")
PORT = json.dumps("import os; print(os.environ['APP_PORT'], os.environ['SHIPYARD_APP_URL'])")


def test_cli_checks_without_an_app_run_on_their_own(tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        f"""
        cli:
          - id: greet
            run: [{PY}, -c, {GREET}]
            env: {{WHERE: "{{workdir}}"}}
            expect: {{exit: 0, stdout_contains: [hello], stderr_contains: [w]}}
          - id: shell
            run: "echo one | tr o O"
            expect: {{stdout_contains: [One]}}
          - id: stdin
            run: [{PY}, -c, "import sys; print(sys.stdin.read().upper())"]
            stdin: shout
            expect: {{stdout_contains: [SHOUT], stderr_empty: true}}
        """,
    )
    result = run_gate(ctx)
    checks = by_id(result)
    assert list(checks) == ["greet", "shell", "stdin"]  # no app-start: nothing was launched
    assert result.status == "passed", [c.message for c in result.checks]
    out = (ctx.run.path / "cli/greet.stdout.log").read_text()
    assert out == f"hello {tmp_path}\n"
    assert (ctx.run.path / "cli/greet.stderr.log").read_text() == "w\n"
    assert checks["greet"].evidence == "cli/greet.stdout.log"
    assert checks["shell"].message == "echo one | tr o O: exit 0"


def test_unmet_expectations_are_each_named_with_the_output(tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        f"""
        cli:
          - id: bad
            run: [{PY}, -c, {BAD}]
            expect: {{exit: 0, stdout_contains: [Usage], stderr_empty: true}}
          - id: slow
            run: [{PY}, -c, "import time; time.sleep(30)"]
            timeout: 0.5
          - id: missing
            run: [no-such-program-xyz, --help]
        """,
    )
    checks = by_id(run_gate(ctx))
    lines = checks["bad"].message.splitlines()
    assert lines[0].endswith(": expected exit 0, got 2")
    assert lines[1:3] == ["stdout does not contain 'Usage'", "expected nothing on stderr"]
    assert "  | usage: x" in lines and "  | oops" in lines
    assert checks["slow"].status == "failed"
    assert checks["slow"].message.endswith(": killed at its timeout of 0.5s")
    assert checks["missing"].status == "failed"
    assert "'no-such-program-xyz' was not found on PATH" in checks["missing"].message


def test_with_an_app_the_cli_gets_its_url_and_port(tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path,
        f"""
        http:
          - id: create
            request: {{method: POST, path: /api/todos, json: {{title: milk}}}}
        cli:
          - id: count
            run: [{PY}, {json.dumps(str(TODO_APP))}, count]
            expect: {{stdout_contains: [1 todos]}}
          - id: port
            run: [{PY}, -c, {PORT}]
            env: {{APP_PORT: "{{port}}"}}
        """,
        app_config(),
    )
    checks = by_id(run_gate(ctx))
    assert checks["count"].status == "passed", checks["count"].message
    assert checks["port"].status == "passed", checks["port"].message
    port = checks["app-start"].message.split()[3]
    out = (ctx.run.path / "cli/port.stdout.log").read_text()
    assert out == f"{port} http://127.0.0.1:{port}\n"


def test_a_traceback_fails_the_check_even_when_the_exit_code_is_0(tmp_path: Path) -> None:
    from fixtures.runtime.support import by_id, make_context, run_gate

    script = (
        "import traceback\\ntry:\\n    1/0\\nexcept ZeroDivisionError:\\n"
        "    traceback.print_exc()\\nprint('usage: x')"
    )
    checks_yaml = f"""
    cli:
      - id: swallow
        run: [python, -c, "{script}"]
        expect: {{exit: 0, stdout_contains: [usage]}}
    """
    check = by_id(run_gate(make_context(tmp_path, checks_yaml)))["swallow"]
    assert check.status == "failed"
    assert "printed a traceback" in check.message
    assert "ZeroDivisionError" in check.message
