"""`lamina up` on AWS SAM templates: the hello-world API answers over real HTTP, a message sent
to the template's SQS queue (and SNS topic) reaches the function subscribed to it, a Lambda
authorizer guards its route, a JWT authorizer checks tokens with keys from a real issuer on a
loopback port (or keys given locally), CORS answers preflights, and `lamina dev` reloads an
edited function."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import client_for, jsonl, lamina_up, run_platform, until
from test_cli_events import lamina
from test_dev_reload import dev_platform

from oidc_issuer import oidc_issuer

pytestmark = pytest.mark.timeout(60)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sam"


def test_lamina_up_serves_the_hello_world_template(tmp_path: Path) -> None:
    app = tmp_path / "sam-app"
    shutil.copytree(FIXTURES / "hello-world", app)
    with lamina_up(app) as up:  # a folder without lamina.yaml: its template.yaml runs
        response = httpx.get(f"{up.gateway_url}/hello", timeout=30)
        missing = httpx.get(f"{up.gateway_url}/nope", timeout=30)
        banner = up.output()
    assert response.status_code == 200, response.text
    assert response.json() == {"message": "hello world"}
    assert missing.status_code == 404
    assert "GET /hello" in banner and "sam-app.HelloWorldFunction" in banner


async def test_sam_queue_and_topic_messages_reach_their_functions(tmp_path: Path) -> None:
    app = tmp_path / "orders"
    shutil.copytree(FIXTURES / "queue-schedule", app)
    out = tmp_path / "out"
    out.mkdir()
    with lamina_up(app, "--param", f"OutDir={out}"):
        body = json.dumps({"orderId": "o-1"})
        sent = await lamina("send", "OrdersQueue", "--body", body, "-C", str(app))
        published = await lamina(
            "publish", "orders-alerts", "--message", "low stock", "-C", str(app)
        )
        orders = await until(lambda: jsonl(out / "orders.jsonl"), "the order to be consumed")
        alerts = await until(lambda: jsonl(out / "alerts.jsonl"), "the alert to be delivered")
    assert sent[0] == 0, sent
    assert published[0] == 0, published
    assert orders == [{"body": body, "source": "aws:sqs"}]
    assert alerts == ["low stock"]


GUARDED = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Gate
        Authorizers:
          Gate:
            FunctionArn: !GetAtt Gatekeeper.Arn
            EnableSimpleResponses: true
            AuthorizerPayloadFormatVersion: "2.0"
            Identity: {Headers: [X-Token]}
  Gatekeeper:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.gate, Runtime: python3.12}
  Secret:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.secret
      Runtime: python3.12
      Events:
        Get:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /secret, Method: GET}
"""
GUARDED_CODE = """\
def gate(event, context):
    ok = event["headers"].get("x-token") == "let-me-in"
    return {"isAuthorized": ok, "context": {"user": "ada"}}


def secret(event, context):
    user = event["requestContext"]["authorizer"]["lambda"]["user"]
    return {"statusCode": 200, "body": "secret for " + user}
"""


def test_a_sam_lambda_authorizer_guards_its_route(tmp_path: Path) -> None:
    app = tmp_path / "guarded"
    (app / "src").mkdir(parents=True)
    (app / "template.yaml").write_text(GUARDED)
    (app / "src" / "app.py").write_text(GUARDED_CODE)
    with lamina_up(app) as up:
        url = f"{up.gateway_url}/secret"
        missing = httpx.get(url, timeout=30)
        wrong = httpx.get(url, headers={"X-Token": "guess"}, timeout=30)
        right = httpx.get(url, headers={"X-Token": "let-me-in"}, timeout=30)
    assert (missing.status_code, wrong.status_code) == (401, 403)
    assert right.status_code == 200, right.text
    assert right.text == "secret for ada"


async def test_dev_reloads_a_sam_function_edit(tmp_path: Path) -> None:
    app = tmp_path / "sam-app"
    shutil.copytree(FIXTURES / "hello-world", app)
    code = app / "hello_world" / "app.py"
    async with dev_platform(app) as dev, client_for(dev.platform) as client:
        before = (await client.get("/hello")).json()
        report = await dev.edit(
            "hello_world/app.py", code.read_text().replace('"hello world"', '"hello again"')
        )
        after = (await client.get("/hello")).json()
    assert report.ok, report.detail
    assert (before, after) == ({"message": "hello world"}, {"message": "hello again"})


async def test_dev_keeps_the_template_parameters_on_a_reload(tmp_path: Path) -> None:
    app = tmp_path / "sam-app"
    shutil.copytree(FIXTURES / "queue-schedule", app)
    template = app / "template.yaml"
    out = str(tmp_path / "out")

    def out_dirs(dev: Any) -> set[str]:
        return {fn.environment.get("OUT_DIR", "") for fn in dev.platform.app.functions().values()}

    async with dev_platform(app, {"OutDir": out}) as dev:
        before = out_dirs(dev)
        report = await dev.edit(
            "template.yaml", template.read_text().replace("Timeout: 10", "Timeout: 12")
        )
        after = out_dirs(dev)
        timeouts = {fn.timeout for fn in dev.platform.app.functions().values()}
    assert report.ok, report.detail
    assert before == after == {out}  # not the template's default, /tmp
    assert timeouts == {12}


def jwt_app(root: Path, issuer: str) -> Path:
    """The jwt-api fixture, its Issuer parameter defaulting to `issuer`."""
    app = root / "jwt-app"
    shutil.copytree(FIXTURES / "jwt-api", app)
    template = app / "template.yaml"
    template.write_text(template.read_text().replace("https://auth.example/pool", issuer))
    return app


async def test_a_sam_jwt_authorizer_checks_tokens_with_the_issuers_published_keys(
    tmp_path: Path,
) -> None:
    with oidc_issuer() as issuer:
        app = jwt_app(tmp_path, issuer.url)
        async with run_platform(app) as platform, client_for(platform) as client:

            async def get(path: str, token: str | None, method: str = "GET") -> httpx.Response:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                return await client.request(method, path, headers=headers)

            reader = issuer.token(aud="web", scope="orders:read")
            writer = issuer.token(aud="web", scope="orders:read orders:write")
            listed = await get("/orders", reader)
            missing = await get("/orders", None)
            wrong_audience = await get("/orders", issuer.token(aud="tv", scope="orders:read"))
            forbidden = await get("/orders", reader, "POST")
            created = await get("/orders", writer, "POST")
            health = await get("/health", None)
            preflight = await client.options(
                "/orders",
                headers={
                    "Origin": "https://app.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
    assert listed.status_code == 200, listed.text
    assert listed.json()["claims"]["iss"] == issuer.url
    assert listed.json()["scopes"] == ["orders:read"]
    assert (missing.status_code, wrong_audience.status_code) == (401, 401)
    assert forbidden.status_code == 403
    assert created.status_code == 200, created.text
    assert (health.status_code, health.json()) == (200, None)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-max-age"] == "600"
    assert issuer.paths.count("/pool/jwks.json") == 1  # fetched once, then kept


async def test_jwt_keys_can_be_served_locally_for_a_remote_issuer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template names a real issuer; LAMINA_JWKS_Users points at keys of our own, so
    tokens made here (with the real issuer's `iss`) pass, and the issuer is never asked."""
    remote = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example"
    with oidc_issuer() as local:
        app = jwt_app(tmp_path, remote)
        monkeypatch.setenv("LAMINA_JWKS_Users", local.jwks_uri)
        async with run_platform(app) as platform, client_for(platform) as client:
            token = local.token(aud="web", iss=remote, scope="orders:read")
            allowed = await client.get("/orders", headers={"Authorization": token})
            other_iss = local.token(aud="web", scope="orders:read")  # iss is the local one
            refused = await client.get("/orders", headers={"Authorization": other_iss})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["claims"]["iss"] == remote
    assert refused.status_code == 401
    assert local.paths == ["/pool/jwks.json"]


async def test_sam_rest_api_lambda_authorizers_answer_with_iam_policies(tmp_path: Path) -> None:
    app = tmp_path / "rest-app"
    out = tmp_path / "out"
    shutil.copytree(FIXTURES / "rest-api", app)
    out.mkdir()
    template = app / "template.yaml"
    template.write_text(template.read_text().replace("Default: /tmp", f"Default: {out}"))
    async with run_platform(app) as platform, client_for(platform) as client:

        async def call(method: str, path: str, **headers: str) -> httpx.Response:
            return await client.request(method, path, headers=headers)

        missing = await call("GET", "/pets/1")
        malformed = await call("GET", "/pets/1", Authorization="Basic abc")
        boom = await call("GET", "/pets/1", Authorization="Bearer boom")
        denied = await call("GET", "/pets/1", Authorization="Bearer deny")
        allowed = await call("GET", "/pets/1", Authorization="Bearer ada")
        cached = await call("GET", "/pets/2", Authorization="Bearer ada")
        other_method = await call("DELETE", "/pets/1", Authorization="Bearer ada")
        user = await call("GET", "/users", **{"X-User": "ada"})
        stranger = await call("GET", "/users", **{"X-User": "bob"})
    assert (missing.status_code, malformed.status_code, boom.status_code) == (401, 401, 401)
    assert denied.status_code == 403
    assert allowed.status_code == 200, allowed.text
    assert allowed.json() == {"principalId": "ada", "tier": "gold"}
    assert cached.status_code == 200
    assert other_method.status_code == 403  # the cached policy allows GET only
    assert (user.status_code, user.json()["principalId"]) == (200, "ada")
    assert stranger.status_code == 403
    calls = [c["token"] for c in jsonl(out / "calls.jsonl")]
    assert calls == ["Bearer boom", "Bearer deny", "Bearer ada"]  # "Basic abc" never asked
