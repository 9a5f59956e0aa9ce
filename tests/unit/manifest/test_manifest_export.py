"""`lamina export sam`'s translator: the template each part of lamina.yaml becomes, its report,
and the round trip through Lamina's own SAM loader."""

from __future__ import annotations

import math
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lamina.manifest import (
    AppSpec,
    FunctionAuthorizer,
    HttpTrigger,
    JwtSpec,
    QueueTrigger,
    ScheduleTrigger,
    TopicTrigger,
    load_app,
    parse_app,
)
from lamina.manifest._cfn import load_cfn_yaml
from lamina.manifest.export import (
    HEADER,
    VERDICTS,
    SamExport,
    aws_schedule,
    export_environ,
    export_sam,
)
from lamina.manifest.sam import format_report, load_sam

EXAMPLES = Path(__file__).parents[3] / "examples"
KITCHEN = Path(__file__).parents[2] / "fixtures" / "export" / "kitchen"
HERE = f"python{sys.version_info.major}.{sys.version_info.minor}"

Exported = tuple[SamExport, dict[str, Any]]


def export_app(app: AppSpec, template: Path) -> Exported:
    """Export `app` to `template` (written), and the template read back in long form."""
    exported = export_sam(app, template)
    template.parent.mkdir(parents=True, exist_ok=True)
    template.write_text(exported.text)
    data, _ = load_cfn_yaml(exported.text, str(template))
    return exported, data


def export(app_dir: Path, template: Path) -> Exported:
    return export_app(load_app(app_dir, environ=export_environ({})), template)


def report(exported: SamExport) -> list[str]:
    return format_report(exported.report, VERDICTS)


def props(data: dict[str, Any], logical: str) -> dict[str, Any]:
    found: dict[str, Any] = data["Resources"][logical]["Properties"]
    return found


@pytest.fixture
def kitchen(tmp_path: Path) -> Exported:
    return export(KITCHEN, tmp_path / "kitchen" / "template.yaml")


# --- Functions --------------------------------------------------------------------------


def test_a_function_keeps_its_code_folder_handler_memory_and_timeout(
    kitchen: Exported, tmp_path: Path
) -> None:
    exported, data = kitchen
    assert exported.functions["users.signup"] == "UsersSignup"
    assert data["Resources"]["UsersSignup"]["Type"] == "AWS::Serverless::Function"
    fn = props(data, "UsersSignup")
    code = Path(os.path.normpath(tmp_path / "kitchen" / fn["CodeUri"]))
    assert code == KITCHEN / "services" / "users"
    assert fn["Handler"] == "handlers.signup"
    assert fn["MemorySize"] == 512
    assert fn["Timeout"] == 3  # 2.5 s rounded up
    assert data["Globals"]["Function"]["Runtime"] == HERE
    assert (
        "approximated services.users.functions.signup.timeout: Timeout 3 s: Lambda takes whole "
        "seconds" in report(exported)
    )


def test_code_uri_is_relative_to_where_the_template_is_written(tmp_path: Path) -> None:
    app = load_app(EXAMPLES / "hello")
    inside = export_sam(app, EXAMPLES / "hello" / "template.yaml")  # not written
    assert "CodeUri: services/greeter\n" in inside.text
    _, data = export_app(app, tmp_path / "build" / "template.yaml")
    uri = props(data, "GreeterHello")["CodeUri"]
    assert not uri.startswith("/")
    assert Path(os.path.normpath(tmp_path / "build" / uri)) == EXAMPLES / "hello" / "services" / (
        "greeter"
    )


def test_the_runtime_can_be_chosen() -> None:
    app = load_app(EXAMPLES / "hello")
    exported = export_sam(app, EXAMPLES / "hello" / "template.yaml", runtime="python3.12")
    assert "  Function:\n    Runtime: python3.12\n" in exported.text


def test_environment_merges_service_and_function_env_and_names_tables_queues_topics(
    kitchen: Exported,
) -> None:
    exported, data = kitchen
    signup = props(data, "UsersSignup")["Environment"]["Variables"]
    assert signup == {
        "STAGE": "prod",  # the function's env wins over the service's
        "TABLE_USERS": "fixed-name",  # set in lamina.yaml: kept
        "TABLE_SESSIONS": {"Ref": "UsersSessionsTable"},
        "QUEUE_JOBS": {"Ref": "JobsQueue"},
        "TOPIC_USER_EVENTS": {"Ref": "UserEventsTopic"},
    }  # AWS_REGION is Lambda's own: dropped
    authorize = props(data, "UsersAuthorize")["Environment"]["Variables"]
    assert authorize["STAGE"] == "dev"
    assert authorize["TABLE_USERS"] == {"Ref": "UsersUsersTable"}
    charge = props(data, "BillingCharge")["Environment"]["Variables"]
    assert "TABLE_USERS" not in charge  # another service's tables are not named
    lines = report(exported)
    assert (
        lines.count(
            "dropped      services.users.env.AWS_REGION: a variable Lambda reserves for itself"
        )
        == 1
    )
    assert (
        "approximated services.users.functions.signup.env.TABLE_USERS: kept as given; the "
        "physical name it would hold is UsersUsersTable" in lines
    )


def test_policies_cover_the_service_tables_and_every_queue_and_topic(kitchen: Exported) -> None:
    _, data = kitchen
    assert props(data, "UsersSignup")["Policies"] == [
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "UsersUsersTable"}}},
        {"DynamoDBCrudPolicy": {"TableName": {"Ref": "UsersSessionsTable"}}},
        {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["JobsQueue", "QueueName"]}}},
        {
            "SNSPublishMessagePolicy": {
                "TopicName": {"Fn::GetAtt": ["UserEventsTopic", "TopicName"]}
            }
        },
    ]
    assert props(data, "BillingAudit")["Policies"] == [
        {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["JobsQueue", "QueueName"]}}},
        {
            "SNSPublishMessagePolicy": {
                "TopicName": {"Fn::GetAtt": ["UserEventsTopic", "TopicName"]}
            }
        },
    ]


def test_instance_limits_become_reserved_and_provisioned_concurrency(kitchen: Exported) -> None:
    exported, data = kitchen
    signup = props(data, "UsersSignup")
    assert signup["ReservedConcurrentExecutions"] == 4
    assert signup["AutoPublishAlias"] == "live"
    assert signup["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 1}
    assert signup["EventInvokeConfig"] == {
        "MaximumRetryAttempts": 1,
        "MaximumEventAgeInSeconds": 60,  # Lambda's least; lamina.yaml said 30
    }
    nightly = props(data, "UsersNightly")
    for key in ("ReservedConcurrentExecutions", "AutoPublishAlias", "EventInvokeConfig"):
        assert key not in nightly  # max_instances and async were not set: Lambda's defaults
    lines = report(exported)
    for line in (
        "dropped      services.users.functions.signup.keep_alive: Lambda decides when idle "
        "execution environments stop",
        "dropped      services.users.functions.signup.async.backoff: Lambda chooses the delay "
        "between retries",
        "approximated services.users.functions.nightly.concurrency: Lambda runs one invocation "
        "at a time per execution environment",
    ):
        assert line in lines


# --- The HTTP API -----------------------------------------------------------------------


def test_routes_become_http_api_events_with_their_method_path_and_payload(
    kitchen: Exported,
) -> None:
    _, data = kitchen
    events = props(data, "UsersSignup")["Events"]
    assert events["Http1"] == {
        "Type": "HttpApi",
        "Properties": {
            "ApiId": {"Ref": "HttpApi"},
            "Path": "/users",
            "Method": "POST",
            "PayloadFormatVersion": "1.0",
            "RouteSettings": {"ThrottlingRateLimit": 5.0, "ThrottlingBurstLimit": 10},
        },
    }
    assert events["Http4"]["Properties"]["Path"] == "/files/{proxy+}"
    assert events["Http4"]["Properties"]["Method"] == "ANY"
    assert events["Http5"] == {"Type": "HttpApi", "Properties": {"ApiId": {"Ref": "HttpApi"}}}


def test_each_kind_of_route_auth_has_its_http_api_authorizer(kitchen: Exported) -> None:
    exported, data = kitchen
    events = props(data, "UsersSignup")["Events"]
    assert events["Http2"]["Properties"]["Auth"] == {
        "Authorizer": "LaminaJwt",
        "AuthorizationScopes": ["users:read"],
    }
    assert events["Http3"]["Properties"]["Auth"] == {"Authorizer": "AWS_IAM"}  # was api_key
    assert events["Http4"]["Properties"]["Auth"] == {"Authorizer": "UsersAuthorizeAuthorizer"}
    assert "Auth" not in events["Http1"]["Properties"]
    auth = props(data, "HttpApi")["Auth"]
    assert auth["EnableIamAuthorizer"] is True
    assert auth["Authorizers"] == {
        "LaminaJwt": {
            "IdentitySource": "$request.header.Authorization",
            "JwtConfiguration": {
                "issuer": {"Ref": "JwtIssuer"},
                "audience": {"Ref": "JwtAudience"},
            },
        },
        "UsersAuthorizeAuthorizer": {
            "FunctionArn": {"Fn::GetAtt": ["UsersAuthorize", "Arn"]},
            "Identity": {"Headers": ["authorization"], "ReauthorizeEvery": 30},
            "AuthorizerPayloadFormatVersion": "2.0",
            "EnableSimpleResponses": True,
            "EnableFunctionDefaultPermissions": True,
        },
    }
    assert data["Parameters"] == {
        "JwtIssuer": {
            "Type": "String",
            "Description": "The JWT issuer (iss); API Gateway fetches its keys by OIDC discovery",
            "Default": "https://id.example",
        },
        "JwtAudience": {
            "Type": "CommaDelimitedList",
            "Description": "Audiences (aud) a token may name",
            "Default": "web,cli",
        },
    }
    assert "not-exported" not in exported.text  # the HS256 secret stays home
    lines = report(exported)
    assert (
        "approximated services.users.functions.signup.events[2].http.auth: HTTP APIs have no API "
        "keys: the route requires IAM (SigV4) authorization" in lines
    )
    assert "dropped      gateway.auth.jwt.leeway: API Gateway allows no clock skew setting" in lines


def test_cors_and_the_gateway_rate_limit_are_settings_of_the_http_api(kitchen: Exported) -> None:
    _, data = kitchen
    api = props(data, "HttpApi")
    assert api["CorsConfiguration"] == {
        "AllowOrigins": ["https://app.example"],
        "AllowMethods": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
        "AllowHeaders": ["authorization"],
        "MaxAge": 600,
        "AllowCredentials": True,
    }
    assert api["DefaultRouteSettings"] == {
        "ThrottlingRateLimit": 50.0,
        "ThrottlingBurstLimit": 100,
    }
    assert data["Outputs"]["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
    }


def test_a_long_function_behind_the_http_api_is_reported(kitchen: Exported) -> None:
    exported, _ = kitchen
    assert (
        "approximated services.users.functions.nightly.events[2].http: the HTTP API ends a "
        "request after 30 s (the function may run 60 s)" in report(exported)
    )


APP = """
app: plain
gateway:
  auth:
    jwt: {secret: "${env:SECRET}", issuer: "${env:ISSUER}"}
services:
  users:
    path: services/users
    functions:
      signup:
        handler: handlers.signup
        events:
          - http: {route: GET /me, auth: jwt}
"""


def test_an_issuer_from_an_unset_variable_becomes_a_parameter_to_give_at_deploy(
    root: Path,
) -> None:
    app = parse_app(textwrap.dedent(APP), root=root, environ=export_environ({}))
    exported = export_sam(app, root / "template.yaml")
    data, _ = load_cfn_yaml(exported.text, "template.yaml")
    assert "Default" not in data["Parameters"]["JwtIssuer"]
    assert "Default" not in data["Parameters"]["JwtAudience"]
    assert (
        "approximated gateway.auth.jwt: no default for JwtIssuer and JwtAudience: give it at "
        "deploy time" in report(exported)
    )


def test_an_app_without_routes_has_no_http_api_and_an_unused_jwt_is_dropped(root: Path) -> None:
    text = APP.replace("- http: {route: GET /me, auth: jwt}", "- schedule: rate(1 hour)")
    app = parse_app(textwrap.dedent(text), root=root, environ={"SECRET": "s", "ISSUER": "i"})
    exported = export_sam(app, root / "template.yaml")
    data, _ = load_cfn_yaml(exported.text, "template.yaml")
    assert "HttpApi" not in data["Resources"]
    assert "Parameters" not in data
    assert "Outputs" not in data
    assert "dropped      gateway.auth.jwt: no route uses auth: jwt" in report(exported)


# --- Events and resources ---------------------------------------------------------------


def test_a_queue_gets_a_dead_letter_queue_and_a_visibility_above_its_consumers_timeout(
    kitchen: Exported,
) -> None:
    exported, data = kitchen
    assert exported.queues == {"jobs": "JobsQueue"}
    assert data["Resources"]["JobsQueue"] == {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "VisibilityTimeout": 20,  # billing.charge runs up to 20 s; lamina.yaml said 1
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
                "maxReceiveCount": 4,
            },
        },
    }
    assert data["Resources"]["JobsDeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    assert props(data, "BillingCharge")["Events"]["Queue1"] == {
        "Type": "SQS",
        "Properties": {
            "Queue": {"Fn::GetAtt": ["JobsQueue", "Arn"]},
            "BatchSize": 10,  # 50 needs a batching window on SQS
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    }
    audit = props(data, "BillingAudit")["Events"]["Queue1"]["Properties"]
    assert audit["BatchSize"] == 5
    assert audit["MaximumBatchingWindowInSeconds"] == 3
    lines = report(exported)
    assert (
        "approximated services.billing.functions.audit.events[0].queue: queue jobs takes its "
        "visibility_timeout and max_receive_count from billing.charge, its first consumer"
    ) in lines
    assert (
        "approximated services.billing.functions.charge.events[0].queue.batch_size: BatchSize "
        "10: SQS takes more only with a batch_window"
    ) in lines


def test_topics_become_sns_topics_and_subscriptions_with_filter_policies(
    kitchen: Exported,
) -> None:
    exported, data = kitchen
    assert exported.topics == {"user-events": "UserEventsTopic"}
    assert data["Resources"]["UserEventsTopic"] == {"Type": "AWS::SNS::Topic"}
    assert props(data, "BillingCharge")["Events"]["Topic2"] == {
        "Type": "SNS",
        "Properties": {"Topic": {"Ref": "UserEventsTopic"}, "FilterPolicy": {"kind": ["signup"]}},
    }
    assert props(data, "BillingAudit")["Events"]["Topic2"]["Properties"] == {
        "Topic": {"Ref": "UserEventsTopic"}
    }


def test_schedules_become_schedule_events_with_their_input(kitchen: Exported) -> None:
    exported, data = kitchen
    events = props(data, "UsersNightly")["Events"]
    assert events["Schedule1"] == {
        "Type": "Schedule",
        "Properties": {"Schedule": "rate(2 minutes)"},
    }
    assert events["Schedule2"] == {
        "Type": "Schedule",
        "Properties": {"Schedule": "cron(0 12 * * ? *)", "Input": '{"job": "nightly"}'},
    }
    assert (
        "approximated services.users.functions.nightly.events[0].schedule: rate(2 minutes): "
        "EventBridge schedules run at most once a minute" in report(exported)
    )


@pytest.mark.parametrize(
    ("lamina", "aws", "changed"),
    [
        ("rate(1 minute)", "rate(1 minute)", False),
        ("rate(5 hours)", "rate(5 hours)", False),
        ("rate(10 seconds)", "rate(1 minute)", True),
        ("rate(60 seconds)", "rate(1 minute)", True),
        ("rate(61 seconds)", "rate(2 minutes)", True),
        ("cron(5 0 * * ? *)", "cron(5 0 * * ? *)", False),
        ("cron( 0  12 ? * MON-FRI * )", "cron(0 12 ? * MON-FRI *)", False),
    ],
    ids=[
        "a minute rate stays",
        "an hours rate stays",
        "seconds round up to one minute",
        "sixty seconds are one minute",
        "sixty-one seconds round up to two minutes",
        "a cron stays",
        "cron spacing is normalized",
    ],
)
def test_schedule_expressions_in_eventbridge_form(lamina: str, aws: str, changed: bool) -> None:
    expression, why = aws_schedule(lamina)
    assert expression == aws
    assert bool(why) == changed


def test_service_tables_become_dynamodb_tables_with_their_keys_and_ttl(kitchen: Exported) -> None:
    exported, data = kitchen
    assert exported.tables == {
        "users.users": "UsersUsersTable",
        "users.sessions": "UsersSessionsTable",
    }
    assert data["Resources"]["UsersSessionsTable"] == {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": "user", "AttributeType": "S"},
                {"AttributeName": "at", "AttributeType": "S"},
            ],
            "KeySchema": [
                {"AttributeName": "user", "KeyType": "HASH"},
                {"AttributeName": "at", "KeyType": "RANGE"},
            ],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
        },
    }
    assert props(data, "UsersUsersTable")["KeySchema"] == [
        {"AttributeName": "email", "KeyType": "HASH"}
    ]


# --- The template as a whole ------------------------------------------------------------


def test_the_same_app_gives_the_same_text(tmp_path: Path) -> None:
    first = export(EXAMPLES / "shop", tmp_path / "a" / "template.yaml")[0].text
    second = export(EXAMPLES / "shop", tmp_path / "b" / "template.yaml")[0].text
    assert first == second
    assert first.startswith(f"{HEADER} from ../../")


def test_logical_ids_that_would_clash_are_numbered(root: Path) -> None:
    (root / "services" / "a-b").mkdir()
    (root / "services" / "a-b" / "h.py").write_text("def f(e, c): ...\n")
    (root / "services" / "a").mkdir()
    (root / "services" / "a" / "h.py").write_text("def f(e, c): ...\n")
    text = """
    app: clash
    services:
      a-b: {functions: {c: {handler: h.f}}}
      a: {functions: {b_c: {handler: h.f}}}
    """
    app = parse_app(textwrap.dedent(text), root=root)
    exported = export_sam(app, root / "template.yaml")
    assert exported.functions == {"a-b.c": "ABC", "a.b_c": "ABC2"}


# --- Round trip through Lamina's SAM loader ---------------------------------------------


def round_trip(app: AppSpec, exported: SamExport, template: Path) -> None:
    """Load the exported template back and check that everything came back, as the report of
    `lamina sam check` says: IAM routes (API keys in Lamina) are not served by Lamina's SAM
    loader; JWT routes come back with the issuer's keys found by OIDC discovery."""
    loaded = load_sam(template)
    service = template.parent.name
    back = loaded.spec.functions()
    assert set(back) == {f"{service}.{logical}" for logical in exported.functions.values()}
    notes = {e.path: e.note for e in loaded.report}
    receives: dict[str, int] = {}  # a queue's settings are its first consumer's
    for f in app.functions().values():
        for event in f.events:
            if isinstance(event, QueueTrigger):
                receives.setdefault(event.name, event.max_receive_count)
    tables = loaded.spec.services[service].tables
    assert tables == {
        exported.tables[f"{s.name}.{name}"]: spec
        for s in app.services.values()
        for name, spec in s.tables.items()
    }
    for f in app.functions().values():
        logical = exported.functions[f.id]
        twin = back[f"{service}.{logical}"]
        assert (twin.handler, twin.path, twin.memory) == (f.handler, f.path, f.memory)
        assert twin.timeout == math.ceil(f.timeout)
        expected: list[object] = []
        for i, event in enumerate(f.events):
            if isinstance(event, HttpTrigger):
                if event.auth == "api_key":
                    at = f"Resources.{logical}.Properties.Events.Http{i + 1}"
                    assert f"route {event.route} is not served" in notes[at]
                    continue
                auth: object = event.auth
                if isinstance(auth, FunctionAuthorizer):
                    auth = auth.model_copy(
                        update={"function": f"{service}.{exported.functions[auth.function]}"}
                    )
                if auth == "jwt":  # the issuer's keys, found by OIDC discovery
                    jwt = app.gateway.auth.jwt
                    assert jwt is not None
                    auth = JwtSpec(issuer=jwt.issuer, audience=jwt.audience)
                expected.append((str(event.route), event.format, auth, event.scopes))
            elif isinstance(event, ScheduleTrigger):
                expected.append(ScheduleTrigger(expression=aws_schedule(event.expression)[0]))
            elif isinstance(event, QueueTrigger):
                expected.append(("queue", exported.queues[event.name], receives[event.name]))
            else:
                expected.append(
                    TopicTrigger(
                        name=exported.topics[event.name], filter_policy=event.filter_policy
                    )
                )
        got: list[object] = []
        for event in twin.events:
            if isinstance(event, HttpTrigger):
                got.append((str(event.route), event.format, event.auth, event.scopes))
            elif isinstance(event, ScheduleTrigger):
                got.append(ScheduleTrigger(expression=event.expression))
            elif isinstance(event, QueueTrigger):
                got.append(("queue", event.name, event.max_receive_count))
            else:
                got.append(event)
        assert got == expected, f.id


@pytest.mark.parametrize("name", ["shop", "hello"])
def test_an_exported_example_loads_back_with_the_same_parts(name: str, tmp_path: Path) -> None:
    app = load_app(EXAMPLES / name, environ=export_environ({}))
    template = tmp_path / name / "template.yaml"
    exported, _ = export_app(app, template)
    round_trip(app, exported, template)


def test_the_kitchen_app_loads_back_with_the_same_parts(kitchen: Exported, tmp_path: Path) -> None:
    exported, _ = kitchen
    app = load_app(KITCHEN)
    round_trip(app, exported, tmp_path / "kitchen" / "template.yaml")
    loaded = load_sam(tmp_path / "kitchen" / "template.yaml").spec
    charge = loaded.functions()["kitchen.BillingCharge"]
    queue = next(e for e in charge.events if isinstance(e, QueueTrigger))
    assert (queue.batch_size, queue.visibility_timeout) == (10, 20.0)


def test_the_shop_queue_and_topic_come_back_under_their_logical_ids(tmp_path: Path) -> None:
    template = tmp_path / "shop" / "template.yaml"
    export(EXAMPLES / "shop", template)
    loaded = load_sam(template).spec.functions()
    emails = loaded["shop.NotificationsSendEmails"].events
    assert emails == (
        QueueTrigger(
            name="EmailsQueue",
            batch_size=10,
            batch_window=1.0,
            visibility_timeout=3.0,  # the function's 3 s timeout; lamina.yaml said 2
            max_receive_count=3,
        ),
    )
    assert loaded["shop.ReportsRecordSale"].events == (TopicTrigger(name="OrderCreatedTopic"),)
    assert loaded["shop.ReportsDailyTotals"].events == (
        ScheduleTrigger(expression="cron(5 0 * * ? *)"),
    )
