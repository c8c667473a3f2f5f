import pytest

from todo import create_app


@pytest.fixture
def client(tmp_path):
    app = create_app(tmp_path / "todo.db")
    app.testing = True
    return app.test_client()


def test_stats_follow_completion(client):
    ids = [client.post("/api/todos", json={"title": t}).get_json()["id"] for t in "xyz"]
    client.patch(f"/api/todos/{ids[1]}", json={"completed": True})
    assert client.get("/api/stats").get_json() == {"total": 3, "left": 2}
    client.delete(f"/api/todos/{ids[0]}")
    assert client.get("/api/stats").get_json() == {"total": 2, "left": 1}
