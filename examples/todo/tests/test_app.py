import pytest

from todo import create_app


@pytest.fixture
def client(tmp_path):
    app = create_app(tmp_path / "todo.db")
    app.testing = True
    return app.test_client()


def add(client, title):
    response = client.post("/api/todos", json={"title": title})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"ok": True}


def test_add_then_list(client):
    assert client.get("/api/todos").get_json() == []
    milk = add(client, "  milk  ")
    assert milk == {"id": milk["id"], "title": "milk", "completed": False}
    bread = add(client, "bread")
    assert client.get("/api/todos").get_json() == [bread, milk]  # newest first


def test_todos_persist_across_app_instances(tmp_path):
    db = tmp_path / "todo.db"
    add(create_app(db).test_client(), "milk")
    todos = create_app(db).test_client().get("/api/todos").get_json()
    assert [todo["title"] for todo in todos] == ["milk"]


@pytest.mark.parametrize("body", [{"title": "   "}, {"title": ""}, {}, {"title": 3}, None])
def test_blank_title_is_rejected(client, body):
    response = client.post("/api/todos", json=body)
    assert response.status_code == 400
    assert "title" in response.get_json()["error"]
    assert client.get("/api/todos").get_json() == []


def test_get_one(client):
    milk = add(client, "milk")
    response = client.get(f"/api/todos/{milk['id']}")
    assert response.status_code == 200
    assert response.get_json() == milk


def test_toggle(client):
    milk = add(client, "milk")
    response = client.patch(f"/api/todos/{milk['id']}", json={"completed": True})
    assert response.status_code == 200
    assert response.get_json() == {**milk, "completed": True}
    assert client.get(f"/api/todos/{milk['id']}").get_json()["completed"] is True
    response = client.patch(f"/api/todos/{milk['id']}", json={"completed": False})
    assert response.get_json()["completed"] is False


def test_toggle_rejects_non_boolean(client):
    milk = add(client, "milk")
    response = client.patch(f"/api/todos/{milk['id']}", json={"completed": "yes"})
    assert response.status_code == 400
    assert "completed" in response.get_json()["error"]
    assert client.get(f"/api/todos/{milk['id']}").get_json()["completed"] is False


def test_delete(client):
    milk = add(client, "milk")
    bread = add(client, "bread")
    response = client.delete(f"/api/todos/{milk['id']}")
    assert response.status_code == 204
    assert response.data == b""
    assert client.get("/api/todos").get_json() == [bread]
    assert client.get(f"/api/todos/{milk['id']}").status_code == 404


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_missing_todo_is_404(client, method):
    response = getattr(client, method)("/api/todos/999", json={"completed": True})
    assert response.status_code == 404
    assert response.get_json() == {"error": "no todo with id 999"}


def test_index_serves_the_page(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'class="new-todo"' in page
    assert 'class="todo-list"' in page
    assert '<script src="/static/app.js">' in page
    response.close()
    script = client.get("/static/app.js")
    assert script.status_code == 200
    assert "/api/todos" in script.get_data(as_text=True)
    script.close()
