"""Exported SAM templates checked by AWS's own tools: `cfn-lint` finds no error, and
`aws-sam-translator` (the SAM transform CloudFormation runs) turns them into the Lambda
functions, API routes, authorizers, event source mappings, subscriptions, rules and DynamoDB
tables of the app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cfnlint.api
import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from lamina.manifest import load_app
from lamina.manifest.export import SamExport, export_environ, export_sam

ROOT = Path(__file__).parents[3]
APPS = {
    "shop": ROOT / "examples" / "shop",
    "hello": ROOT / "examples" / "hello",
    "kitchen": ROOT / "tests" / "fixtures" / "export" / "kitchen",
}


class NoManagedPolicies:
    """The translator's `managed_policy_loader`: the map of AWS managed policy names to ARNs,
    which it otherwise asks IAM for. Exported templates name no managed policy (only SAM
    policy templates), so the map is empty and the translation needs no AWS account."""

    def load(self) -> dict[str, str]:
        return {}


def exported(name: str, tmp_path: Path) -> tuple[SamExport, Path]:
    template = tmp_path / name / "template.yaml"
    template.parent.mkdir(parents=True)
    export = export_sam(load_app(APPS[name], environ=export_environ({})), template)
    template.write_text(export.text)
    return export, template


def translate(text: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """CloudFormation from the template, after the step `sam package` does first: each local
    CodeUri becomes the S3 object it uploads the code to."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator resolves ARNs in one
    template = yaml_parse(text)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            code = resource["Properties"]["CodeUri"].replace("../", "")
            resource["Properties"]["CodeUri"] = f"s3://deploy-bucket/{code}"
    result: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return result


def of_type(cfn: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in cfn["Resources"].items() if v["Type"] == kind}


@pytest.mark.parametrize("name", sorted(APPS))
def test_cfn_lint_finds_nothing_wrong(name: str, tmp_path: Path) -> None:
    _, template = exported(name, tmp_path)
    matches = cfnlint.api.lint(template.read_text(), regions=["us-east-1", "eu-west-1"])
    assert [str(m) for m in matches] == []


@pytest.mark.parametrize("name", sorted(APPS))
def test_the_sam_transform_makes_every_function_and_route(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export, template = exported(name, tmp_path)
    cfn = translate(template.read_text(), monkeypatch)
    app = load_app(APPS[name], environ=export_environ({}))
    functions = of_type(cfn, "AWS::Lambda::Function")
    assert set(functions) == set(export.functions.values())
    for f in app.functions().values():
        fn = functions[export.functions[f.id]]
        assert fn["Handler"] == f.handler
        assert fn["MemorySize"] == f.memory
        assert fn["Code"]["S3Bucket"] == "deploy-bucket"
    (api,) = of_type(cfn, "AWS::ApiGatewayV2::Api").values()
    paths = api["Body"]["paths"]
    routes = set()
    for path, methods in paths.items():
        for method in methods:
            shown = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
            routes.add("$default" if path == "$default" else f"{shown} {path}")
    assert routes == {str(route) for route, _, _ in app.http_routes()}


def test_the_shop_becomes_its_tables_queue_topic_schedule_and_guarded_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export, template = exported("shop", tmp_path)
    cfn = translate(template.read_text(), monkeypatch)
    tables = of_type(cfn, "AWS::DynamoDB::Table")
    assert tables["OrdersOrdersTable"]["KeySchema"] == [
        {"AttributeName": "user", "KeyType": "HASH"},
        {"AttributeName": "id", "KeyType": "RANGE"},
    ]
    assert set(tables) == set(export.tables.values())
    (mapping,) = of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["EmailsQueue", "Arn"]}
    assert mapping["FunctionName"] == {"Ref": "NotificationsSendEmails"}
    assert mapping["BatchSize"] == 10
    assert mapping["MaximumBatchingWindowInSeconds"] == 1
    queues = of_type(cfn, "AWS::SQS::Queue")
    assert queues["EmailsQueue"]["RedrivePolicy"]["maxReceiveCount"] == 3
    subscriptions = of_type(cfn, "AWS::SNS::Subscription").values()
    assert sorted(s["Endpoint"]["Fn::GetAtt"][0] for s in subscriptions) == [
        "NotificationsOnOrder",
        "ReportsRecordSale",
    ]
    assert {s["TopicArn"]["Ref"] for s in subscriptions} == {"OrderCreatedTopic"}
    (rule,) = of_type(cfn, "AWS::Events::Rule").values()
    assert rule["ScheduleExpression"] == "cron(5 0 * * ? *)"
    (api,) = of_type(cfn, "AWS::ApiGatewayV2::Api").values()
    body = api["Body"]
    assert body["paths"]["/orders"]["post"]["security"] == [{"LaminaJwt": ["orders:write"]}]
    assert "security" not in body["paths"]["/products"]["get"]
    jwt = body["components"]["securitySchemes"]["LaminaJwt"]["x-amazon-apigateway-authorizer"]
    assert jwt["type"] == "jwt"
    assert jwt["jwtConfiguration"] == {
        "issuer": {"Ref": "JwtIssuer"},
        "audience": {"Ref": "JwtAudience"},
    }


def test_the_kitchen_gets_its_lambda_authorizer_iam_routes_and_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, template = exported("kitchen", tmp_path)
    cfn = translate(template.read_text(), monkeypatch)
    (api,) = of_type(cfn, "AWS::ApiGatewayV2::Api").values()
    paths = api["Body"]["paths"]
    assert paths["/users/{id}"]["delete"]["security"] == [{"AWS_IAM": []}]
    assert paths["/files/{proxy+}"]["x-amazon-apigateway-any-method"]["security"] == [
        {"UsersAuthorizeAuthorizer": []}
    ]
    assert paths["/users"]["post"]["x-amazon-apigateway-integration"]["payloadFormatVersion"] == (
        "1.0"
    )
    gate = api["Body"]["components"]["securitySchemes"]["UsersAuthorizeAuthorizer"]
    assert gate["x-amazon-apigateway-authorizer"]["authorizerResultTtlInSeconds"] == 30
    assert api["Body"]["x-amazon-apigateway-cors"]["allowOrigins"] == ["https://app.example"]
    assert api["Body"]["x-amazon-apigateway-cors"]["allowCredentials"] is True
    permissions = of_type(cfn, "AWS::Lambda::Permission").values()
    assert {"Fn::GetAtt": ["UsersAuthorize", "Arn"]} in [p["FunctionName"] for p in permissions]
    (stage,) = of_type(cfn, "AWS::ApiGatewayV2::Stage").values()
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": 50.0,
        "ThrottlingBurstLimit": 100,
    }
    assert stage["RouteSettings"] == {
        "POST /users": {"ThrottlingRateLimit": 5.0, "ThrottlingBurstLimit": 10}
    }
    functions = of_type(cfn, "AWS::Lambda::Function")
    assert functions["UsersSignup"]["ReservedConcurrentExecutions"] == 4
    (alias,) = of_type(cfn, "AWS::Lambda::Alias").values()
    assert alias["Name"] == "live"
    assert alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 1}
    (invoke_config,) = of_type(cfn, "AWS::Lambda::EventInvokeConfig").values()
    assert invoke_config["MaximumRetryAttempts"] == 1
    tables = of_type(cfn, "AWS::DynamoDB::Table")
    assert tables["UsersSessionsTable"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at",
        "Enabled": True,
    }
    rules = sorted(r["ScheduleExpression"] for r in of_type(cfn, "AWS::Events::Rule").values())
    assert rules == ["cron(0 12 * * ? *)", "rate(2 minutes)"]
    subscriptions = of_type(cfn, "AWS::SNS::Subscription")
    assert subscriptions["BillingChargeTopic2"]["FilterPolicy"] == {"kind": ["signup"]}
