"""Apps in the shape of real ones: a Flask blog like the Flask tutorial's, and an Express-style
login (Node, standard library). The good tree verifies; each realistic break fails at the right
check, with the decisive line in its message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conftest import CliRun, Project

APPS = Path(__file__).parent / "fixtures" / "realapps"


def copy_app(name: str, tmp_path: Path, *, ui: bool = True) -> Project:
    project = Project(tmp_path / name)
    shutil.copytree(APPS / name, project.path, dirs_exist_ok=True)
    if not ui:  # the HTTP checks alone: no browser needed for what they show
        spec = yaml.safe_load((project.path / "spec.yaml").read_text())
        ui_covers = {a for flow in spec["checks"].pop("ui") for a in flow["covers"]}
        http_covers = {a for check in spec["checks"]["http"] for a in check["covers"]}
        assert ui_covers <= http_covers
        (project.path / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return project


def edit(project: Project, name: str, old: str, new: str) -> None:
    path = project.path / name
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {name} exactly once"
    path.write_text(text.replace(old, new))


def statuses(run: CliRun) -> dict[str, str]:
    return {c["id"]: c["status"] for g in run.json["gates"] for c in g["checks"]}


def failed(run: CliRun) -> list[str]:
    return [check_id for check_id, status in statuses(run).items() if status == "failed"]


@pytest.mark.browser
def test_the_flask_blog_verifies_with_forms_sessions_redirects_and_uploads(tmp_path: Path) -> None:
    run = copy_app("flaskr", tmp_path).verify()
    assert run.code == 0, run.stdout + run.stderr
    assert set(statuses(run).values()) == {"passed"}
    assert run.check("create-post")["message"] == "POST /create -> 302 -> GET / -> 200"
    assert run.check("bob-cannot-edit")["message"] == "POST /1/update -> 403"
    runs = tmp_path / "flaskr" / ".shipyard" / "runs"
    evidence = (next(runs.iterdir()) / "http" / "avatar.json").read_text()
    assert 'filename=\\"avatar.png\\"' in evidence and '"redirects"' in evidence


BREAKS = {
    "missing-commit": (
        "                db.commit()\n            except sqlite3.IntegrityError:",
        "            except sqlite3.IntegrityError:",
        "login-alice",
        ["POST /auth/login -> 200: expected status 302, got 200", "  | Incorrect username."],
    ),
    "wrong-redirect": (
        'else:\n                return redirect(url_for("login"))',
        'else:\n                return redirect(url_for("register"))',
        "register-alice",
        [
            "POST /auth/register -> 302: header location: expected exactly '/auth/login', "
            "got '/auth/register'",
            "location: /auth/register",
        ],
    ),
    "author-check-removed": (
        '    if check_author and post["author_id"] != g.user["id"]:\n        abort(403)\n',
        "",
        "bob-cannot-edit",
        ["POST /1/update -> 302: expected status 403, got 302", "location: /"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_a_broken_flask_blog_fails_at_the_right_check(name: str, tmp_path: Path) -> None:
    old, new, check_id, lines = BREAKS[name]
    project = copy_app("flaskr", tmp_path, ui=False)
    edit(project, "app.py", old, new)
    run = project.verify()
    assert run.code == 1, run.stdout + run.stderr
    assert check_id in failed(run)
    message = run.check(check_id)["message"].splitlines()
    assert message[0] == lines[0]
    assert all(line in message for line in lines[1:]), message


@pytest.mark.browser
def test_a_lost_session_fails_the_http_check_and_the_flow_with_where_the_page_was(
    tmp_path: Path,
) -> None:
    project = copy_app("flaskr", tmp_path)
    edit(project, "app.py", 'user_id = session.get("user_id")', 'user_id = session.get("user")')
    run = project.verify()
    assert run.code == 1
    post = run.check("create-post")["message"].splitlines()
    assert post[0].startswith(
        "POST /create -> 302 -> GET /auth/login -> 200: final URL: expected it to match '/$', "
        "it is http://127.0.0.1:"
    )
    assert "  | Log In" in post
    flow = run.check("alice-writes-in-browser")
    lines = flow["message"].splitlines()
    assert lines[0] == "step 2 wait_for nav .user: not visible after 5s (0 matching elements)"
    assert lines[1].startswith("page: http://127.0.0.1:") and lines[1].endswith(
        "/ (title 'Posts - Flaskr')"
    )
    assert flow["evidence"] == "ui/alice-writes-in-browser/failed-step-2.png"
    shot = next((project.path / ".shipyard" / "runs").iterdir()) / flow["evidence"]
    assert shot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.browser
def test_the_express_style_login_verifies_with_two_users_side_by_side(tmp_path: Path) -> None:
    run = copy_app("expressauth", tmp_path).verify()
    assert run.code == 0, run.stdout + run.stderr
    assert set(statuses(run).values()) == {"passed"}
    assert run.check("tj-restricted")["message"] == "GET /restricted -> 200"


EXPRESS_BREAKS = {
    "session-not-saved": (
        "      session.user = form.username;\n",
        "",
        "tj-restricted",
        ["GET /restricted -> 302: expected status 200, got 302", "location: /login",
         "response body: Found. Redirecting to /login"],
    ),
    "denied-redirects-home": (
        "session.error = 'Access denied!';\n    return redirect(res, sid, '/login');",
        "session.error = 'Access denied!';\n    return redirect(res, sid, '/');",
        "ann-still-out",
        ["GET /restricted -> 302: header location: expected exactly '/login', got '/'"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EXPRESS_BREAKS))
def test_a_broken_express_style_login_fails_at_the_right_check(name: str, tmp_path: Path) -> None:
    old, new, check_id, lines = EXPRESS_BREAKS[name]
    project = copy_app("expressauth", tmp_path, ui=False)
    edit(project, "server.js", old, new)
    run = project.verify()
    assert run.code == 1, run.stdout + run.stderr
    assert failed(run) == [check_id]
    message = run.check(check_id)["message"].splitlines()
    assert message[0] == lines[0]
    assert all(line in message for line in lines[1:]), message
