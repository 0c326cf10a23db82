"""Authentication over HTTP (X-API-Key, /auth/token, bearer tokens) and the CLI."""

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from gis.auth.accounts import create_api_key, create_user, revoke_api_key
from gis.auth.tokens import decode_token
from gis.settings import Settings

WARD = "19753"
runner = CliRunner()


@pytest.fixture(scope="module")
def accounts(database_url: str) -> Iterator[dict[str, str]]:
    with psycopg.connect(database_url) as c:
        create_user(c, "api.planner", "planner-pass", "planner")
        create_user(c, "api.inspector", "inspector-pass", "inspector", [WARD, "19774"])
        keys = {"inspector": create_api_key(c, "inspector", "api.tablet", [WARD]),
                "revoked": create_api_key(c, "admin", "api.old")}
        revoke_api_key(c, keys["revoked"])
    yield keys
    with psycopg.connect(database_url) as c:
        c.execute("DELETE FROM api_keys WHERE name LIKE 'api.%'")
        c.execute("DELETE FROM users WHERE username LIKE 'api.%'")


@pytest.fixture(scope="module")
def client(settings: Settings, accounts) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def _token(client: TestClient, username: str, password: str):
    return client.post("/auth/token", data={"username": username, "password": password,
                                            "grant_type": "password"})


def test_anonymous_is_public(client: TestClient) -> None:
    r = client.get("/auth/me")
    assert r.status_code == 200
    assert r.json() == {"role": "public", "name": "anonymous", "user_id": None, "wards": [],
                        "via": "anonymous"}


def test_api_key(client: TestClient, accounts) -> None:
    r = client.get("/auth/me", headers={"X-API-Key": accounts["inspector"]})
    assert r.status_code == 200
    assert r.json()["role"] == "inspector" and r.json()["wards"] == [WARD]
    assert r.json()["via"] == "api_key"


@pytest.mark.parametrize("headers", [
    {"X-API-Key": "hgk_00000000_unknown"},
    {"X-API-Key": ""},
    {"Authorization": "Bearer not.a.jwt"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
])
def test_bad_credentials_are_401_never_anonymous(client: TestClient, headers) -> None:
    r = client.get("/auth/me", headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["code"] == "Unauthorized"


def test_revoked_key_is_401(client: TestClient, accounts) -> None:
    r = client.get("/auth/me", headers={"X-API-Key": accounts["revoked"]})
    assert r.status_code == 401 and "revoked" in r.json()["description"]


def test_password_flow_and_bearer(client: TestClient, settings: Settings) -> None:
    r = _token(client, "api.inspector", "inspector-pass")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == settings.token_expires_s
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["role"] == "inspector" and me.json()["wards"] == ["19753", "19774"]
    assert me.json()["via"] == "token" and me.json()["name"] == "api.inspector"
    # The generated secret is shared through the var dir, readable by the owner only.
    assert (settings.var_dir / "jwt-secret").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("username,password", [("api.planner", "wrong"),
                                               ("nobody", "planner-pass")])
def test_bad_password_is_401_with_challenge(client: TestClient, username, password) -> None:
    r = _token(client, username, password)
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    assert r.json() == {"code": "Unauthorized", "description": "wrong username or password"}


def test_token_form_missing_fields_is_400(client: TestClient) -> None:
    assert client.post("/auth/token", data={"username": "x"}).status_code == 400
    r = client.post("/auth/token", data={"username": "x", "password": "y",
                                         "grant_type": "client_credentials"})
    assert r.status_code == 400


def test_cli_users_and_keys(settings: Settings, client: TestClient) -> None:
    env = {"HUEGIS_DATABASE_URL": settings.dsn, "HUEGIS_VAR_DIR": str(settings.var_dir)}
    r = runner.invoke(cli, ["users", "create", "api.cli", "--role", "inspector",
                            "--ward", WARD], input="cli-password\ncli-password\n", env=env)
    assert r.exit_code == 0, r.output
    assert _token(client, "api.cli", "cli-password").status_code == 200
    r = runner.invoke(cli, ["users", "create", "api.cli2", "--role", "mayor",
                            "--password", "whatever1"], env=env)
    assert r.exit_code == 2 and "unknown role" in r.output
    r = runner.invoke(cli, ["users", "list"], env=env)
    assert r.exit_code == 0 and "api.cli" in r.output and "19753" in r.output

    r = runner.invoke(cli, ["apikey", "create", "--role", "planner", "--name", "api.qgis"], env=env)
    assert r.exit_code == 0, r.output
    key = r.output.strip()
    assert client.get("/auth/me", headers={"X-API-Key": key}).json()["role"] == "planner"
    r = runner.invoke(cli, ["apikey", "list"], env=env)
    assert "api.qgis" in r.output and key not in r.output
    r = runner.invoke(cli, ["apikey", "revoke", key.split("_")[1]], env=env)
    assert r.exit_code == 0, r.output
    assert client.get("/auth/me", headers={"X-API-Key": key}).status_code == 401
    r = runner.invoke(cli, ["apikey", "create", "--role", "inspector", "--ward", "00000"],
                      env=env)
    assert r.exit_code == 2 and "unknown ward" in r.output


def test_openapi_declares_both_schemes(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"]["name"] == "X-API-Key"
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "auth/token"
    post = doc["paths"]["/collections/{collection_id}/items"]["post"]
    assert {"APIKeyHeader": []} in post["security"]


def test_tokens_work_across_the_workers_of_a_real_server(live_server: str,
                                                          demo_settings: Settings) -> None:
    """``huegis serve --workers 2``: a token signed by one worker is accepted by the other
    (the generated secret is shared through the var dir)."""
    import httpx

    with psycopg.connect(demo_settings.dsn) as c:
        create_user(c, "live.planner", "live-password", "planner")
    try:
        # No keep-alive: each request is a new connection, taken by either worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=live_server, timeout=10, limits=limits) as http:
            tokens = []
            for _ in range(4):  # signed by whichever worker answers
                r = http.post("/auth/token", data={"username": "live.planner",
                                                   "password": "live-password"})
                assert r.status_code == 200, r.text
                tokens.append(r.json()["access_token"])
            for token in tokens:
                for _ in range(4):
                    me = http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
                    assert me.status_code == 200 and me.json()["name"] == "live.planner"
        secret_file = demo_settings.var_dir / "jwt-secret"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        for token in tokens:  # every worker signed with the one shared secret
            assert decode_token(Settings(jwt_secret=secret_file.read_text()), token)["name"] \
                == "live.planner"
    finally:
        with psycopg.connect(demo_settings.dsn) as c:
            c.execute("DELETE FROM users WHERE username = 'live.planner'")
