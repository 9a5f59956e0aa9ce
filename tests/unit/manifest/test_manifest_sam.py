"""SAM templates mapped to an AppSpec, and the compatibility report, line for line."""

from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from lamina.errors import ManifestError
from lamina.manifest import (
    FunctionAuthorizer,
    HttpTrigger,
    JwtSpec,
    QueueTrigger,
    ScheduleTrigger,
    TopicTrigger,
    load_app,
)
from lamina.manifest.sam import SamApp, format_report, is_sam_template, load_sam, parse_sam

FIXTURES = Path(__file__).parents[2] / "fixtures" / "sam"
HERE = f"python{sys.version_info.major}.{sys.version_info.minor}"
RUNTIME = (
    "run          {path}: python3.12, the Python running lamina"
    if HERE == "python3.12"
    else "approximated {path}: runs on " + HERE + " (the Python running lamina)"
)

HELLO_REPORT = [
    "ignored      AWSTemplateFormatVersion: informational",
    "run          Transform: AWS::Serverless-2016-10-31: SAM resources are mapped by Lamina",
    "ignored      Description: informational",
    "run          Globals.Function.Timeout: 3 s",
    "run          Globals.Function.MemorySize: 128 MB",
    "ignored      Globals.Function.Tracing: Lamina traces every invocation itself (W3C trace "
    "context)",
    "ignored      Globals.Function.LoggingConfig: function output goes to `lamina logs`",
    "ignored      Globals.Api.TracingEnabled: Globals.Api settings are not used by Lamina",
    "run          Resources.HelloWorldFunction: AWS::Serverless::Function -> function "
    "hello-world.HelloWorldFunction",
    "run          Resources.HelloWorldFunction.Properties.CodeUri: code folder hello_world/",
    "run          Resources.HelloWorldFunction.Properties.Handler: handler app.lambda_handler",
    RUNTIME.format(path="Resources.HelloWorldFunction.Properties.Runtime"),
    "ignored      Resources.HelloWorldFunction.Properties.Architectures: functions run on this "
    "machine's architecture",
    "run          Resources.HelloWorldFunction.Properties.Events.HelloWorld: route GET /hello on "
    "the Lamina gateway, REST API proxy event (payload 1.0)",
    "run          Resources.HelloWorldFunction.Properties.Events.HelloWorld.Properties.Path: "
    "path /hello",
    "run          Resources.HelloWorldFunction.Properties.Events.HelloWorld.Properties.Method: "
    "method GET",
    "ignored      Resources.ApplicationResourceGroup: resource type AWS::ResourceGroups::Group "
    "is not run by Lamina",
    "ignored      Resources.ApplicationResourceGroup.Properties.Name: part of the ignored "
    "AWS::ResourceGroups::Group",
    "ignored      Resources.ApplicationResourceGroup.Properties.ResourceQuery: part of the "
    "ignored AWS::ResourceGroups::Group",
    "ignored      Resources.ApplicationInsightsMonitoring: resource type "
    "AWS::ApplicationInsights::Application is not run by Lamina",
    "ignored      Resources.ApplicationInsightsMonitoring.Properties.ResourceGroupName: part of "
    "the ignored AWS::ApplicationInsights::Application",
    "ignored      Resources.ApplicationInsightsMonitoring.Properties.AutoConfigurationEnabled: "
    "part of the ignored AWS::ApplicationInsights::Application",
    "ignored      Outputs.HelloWorldApi: outputs are not exported (no stack)",
    "ignored      Outputs.HelloWorldFunction: outputs are not exported (no stack)",
    "ignored      Outputs.HelloWorldFunctionIamRole: outputs are not exported (no stack)",
]


def hello() -> SamApp:
    return load_sam(FIXTURES / "hello-world" / "template.yaml")


def test_the_hello_world_template_becomes_one_function_on_get_hello() -> None:
    spec = hello().spec
    assert spec.name == "hello-world"
    fn = spec.functions()["hello-world.HelloWorldFunction"]
    assert fn.handler == "app.lambda_handler"
    assert fn.path == FIXTURES / "hello-world" / "hello_world"
    assert (fn.memory, fn.timeout) == (128, 3.0)
    [event] = fn.events
    assert isinstance(event, HttpTrigger)
    assert (str(event.route), event.format) == ("GET /hello", "1.0")


def test_the_hello_world_report_is_exact() -> None:
    run = 10 if HERE == "python3.12" else 9
    counts = f"{run} run, {10 - run} approximated, 15 ignored"
    assert format_report(hello().report) == [*HELLO_REPORT, counts]


def test_report_entries_carry_their_template_line() -> None:
    lines = {e.path: e.line for e in hello().report}
    assert lines["Resources.HelloWorldFunction.Properties.Handler"] == 25
    assert lines["Resources.HelloWorldFunction.Properties.Events.HelloWorld.Properties.Path"] == 33


def queue_schedule(**params: str) -> SamApp:
    return load_sam(FIXTURES / "queue-schedule" / "template.yaml", parameters=params)


def test_the_queue_schedule_template_maps_queue_schedule_topic_and_table() -> None:
    spec = queue_schedule().spec
    [service] = spec.services.values()
    assert service.name == "queue-schedule"
    assert dict(service.tables)["OrdersTable"].key == "orderId"
    fns = spec.functions()
    orders = fns["queue-schedule.ProcessOrderFunction"]
    assert orders.memory == 256  # !If [IsProd, 1024, 256] with Stage dev
    assert orders.events == (
        QueueTrigger(name="OrdersQueue", batch_size=5, visibility_timeout=60, max_receive_count=3),
    )
    assert orders.environment == {
        "STAGE": "dev",
        "OUT_DIR": "/tmp",
        "TABLE_NAME": "OrdersTable",
        "ALERTS_TOPIC": "queue-schedule-alerts",
    }
    tick = fns["queue-schedule.TickFunction"]
    assert tick.events == (ScheduleTrigger(expression="rate(1 minute)", input={"source": "tick"}),)
    assert tick.environment == {"STAGE": "dev", "OUT_DIR": "/tmp"}
    assert (tick.memory, tick.timeout) == (128, 10.0)
    alert = fns["queue-schedule.AlertFunction"]
    assert alert.events == (TopicTrigger(name="queue-schedule-alerts"),)


def test_parameter_overrides_flow_through_conditions() -> None:
    loaded = queue_schedule(Stage="prod", BatchSize="7")
    orders = loaded.spec.functions()["queue-schedule.ProcessOrderFunction"]
    assert orders.memory == 1024
    assert orders.environment["STAGE"] == "prod"
    assert isinstance(orders.events[0], QueueTrigger) and orders.events[0].batch_size == 7
    rows = format_report(loaded.report)
    assert "run          Parameters.Stage: = 'prod' (given with --param)" in rows
    assert "run          Conditions.IsProd: true" in rows


def test_the_queue_schedule_report_is_exact() -> None:
    fn = "Resources.{}.Properties"
    rows = [
        "ignored      AWSTemplateFormatVersion: informational",
        "run          Transform: AWS::Serverless-2016-10-31: SAM resources are mapped by Lamina",
        "ignored      Description: informational",
        "run          Parameters.Stage: = 'dev' (the default)",
        "run          Parameters.BatchSize: = '5' (the default)",
        "run          Parameters.OutDir: = '/tmp' (the default)",
        "run          Conditions.IsProd: false",
        RUNTIME.format(path="Globals.Function.Runtime"),
        "run          Globals.Function.Timeout: 10 s",
        "run          Globals.Function.Environment: 2 variables",
        "run          Resources.OrdersQueue: AWS::SQS::Queue -> queue OrdersQueue",
        "run          Resources.OrdersQueue.Properties.VisibilityTimeout: messages are leased for "
        "60 s",
        "approximated Resources.OrdersQueue.Properties.RedrivePolicy: dead-letters after 3 "
        "deliveries into Lamina's dead-letter queue (lamina dlq), not into deadLetterTargetArn",
        "run          Resources.OrdersDeadLetterQueue: AWS::SQS::Queue -> queue "
        "OrdersDeadLetterQueue",
        "ignored      Resources.OrdersDeadLetterQueue.Properties.MessageRetentionPeriod: messages "
        "are kept until consumed or dead-lettered",
        "run          Resources.AlertsTopic: AWS::SNS::Topic -> topic queue-schedule-alerts",
        "run          Resources.AlertsTopic.Properties.TopicName: topic queue-schedule-alerts",
        "run          Resources.OrdersTable: AWS::DynamoDB::Table -> table OrdersTable of "
        "service queue-schedule",
        "approximated Resources.OrdersTable.Properties.AttributeDefinitions: attribute types are "
        "not enforced",
        "run          Resources.OrdersTable.Properties.KeySchema: partition key orderId",
        "ignored      Resources.OrdersTable.Properties.BillingMode: no billing: the store holds "
        "the table",
        "run          Resources.ProcessOrderFunction: AWS::Serverless::Function -> function "
        "queue-schedule.ProcessOrderFunction",
        f"run          {fn.format('ProcessOrderFunction')}.CodeUri: code folder src/",
        f"run          {fn.format('ProcessOrderFunction')}.Handler: handler app.process_order",
        f"run          {fn.format('ProcessOrderFunction')}.MemorySize: 256 MB",
        f"run          {fn.format('ProcessOrderFunction')}.Environment: 4 variables",
        f"ignored      {fn.format('ProcessOrderFunction')}.Policies: no IAM: every function may "
        "use every table, queue and topic of the app",
        f"run          {fn.format('ProcessOrderFunction')}.Events.OrdersQueueEvent: consumes "
        "queue OrdersQueue",
        f"run          {fn.format('ProcessOrderFunction')}.Events.OrdersQueueEvent.Properties."
        "Queue: queue OrdersQueue",
        f"run          {fn.format('ProcessOrderFunction')}.Events.OrdersQueueEvent.Properties."
        "BatchSize: batches of up to 5",
        "run          Resources.TickFunction: AWS::Serverless::Function -> function "
        "queue-schedule.TickFunction",
        f"run          {fn.format('TickFunction')}.CodeUri: code folder src/",
        f"run          {fn.format('TickFunction')}.Handler: handler app.tick",
        f"run          {fn.format('TickFunction')}.Events.EveryMinute: schedule rate(1 minute)",
        f"run          {fn.format('TickFunction')}.Events.EveryMinute.Properties.Schedule: "
        "rate(1 minute)",
        f"run          {fn.format('TickFunction')}.Events.EveryMinute.Properties.Input: the "
        "event passed to the function",
        f"ignored      {fn.format('TickFunction')}.Events.EveryMinute.Properties.Description: "
        "informational",
        "run          Resources.AlertFunction: AWS::Serverless::Function -> function "
        "queue-schedule.AlertFunction",
        f"run          {fn.format('AlertFunction')}.CodeUri: code folder src/",
        f"run          {fn.format('AlertFunction')}.Handler: handler app.alert",
        f"run          {fn.format('AlertFunction')}.Events.Alerts: subscribes to topic "
        "queue-schedule-alerts",
        f"run          {fn.format('AlertFunction')}.Events.Alerts.Properties.Topic: topic "
        "queue-schedule-alerts",
        "ignored      Outputs.OrdersQueueUrl: outputs are not exported (no stack)",
        "approximated AWS::StackName: = 'queue-schedule': the app name (the template's folder)",
    ]
    run = 34 if HERE == "python3.12" else 33
    counts = f"{run} run, {37 - run} approximated, 7 ignored"
    assert format_report(queue_schedule().report) == [*rows, counts]


def test_load_app_runs_a_sam_template_given_as_file_or_folder(tmp_path: Path) -> None:
    app = tmp_path / "sam-app"
    shutil.copytree(FIXTURES / "hello-world", app)
    by_file = load_app(app / "template.yaml")
    by_folder = load_app(app)
    assert by_file.name == by_folder.name == "sam-app"
    assert list(by_folder.functions()) == ["sam-app.HelloWorldFunction"]
    overridden = load_app(FIXTURES / "queue-schedule", parameters={"Stage": "prod"})
    assert overridden.functions()["queue-schedule.ProcessOrderFunction"].memory == 1024


def test_parameters_are_for_sam_templates_only(tmp_path: Path) -> None:
    (tmp_path / "lamina.yaml").write_text("app: x\n")
    with pytest.raises(ManifestError, match="--param applies to SAM templates only"):
        load_app(tmp_path, parameters={"Stage": "prod"})


def test_is_sam_template_needs_the_transform() -> None:
    assert is_sam_template("Transform: AWS::Serverless-2016-10-31\nResources: {}\n")
    assert is_sam_template("Transform:\n  - AWS::Serverless-2016-10-31\n")
    assert not is_sam_template("app: shop\nservices: {}\n")


# --- Small templates: intrinsics, events, tables and errors ---------------------------------


def sam(root: Path, body: str, environ: Mapping[str, str] | None = None, **params: str) -> SamApp:
    """Parse a template made of the SAM header and `body`, with code in `root/src/app.py`;
    `environ` holds LAMINA_JWKS overrides (none by default, whatever the test's own)."""
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "app.py").write_text("def handler(e, c): ...\n")
    text = "Transform: AWS::Serverless-2016-10-31\n" + textwrap.dedent(body)
    return parse_sam(
        text,
        file=root / "template.yaml",
        shown="template.yaml",
        parameters=params,
        environ=environ or {},
    )


def fail(root: Path, body: str, **params: str) -> str:
    with pytest.raises(ManifestError) as info:
        sam(root, body, **params)
    return str(info.value)


FN = """\
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
"""


def test_intrinsic_functions_resolve(tmp_path: Path) -> None:
    loaded = sam(
        tmp_path,
        """\
        Parameters:
          Env: {Type: String, Default: test}
          Names: {Type: CommaDelimitedList, Default: "a,b,c"}
        Conditions:
          IsTest: !Equals [!Ref Env, test]
          NotTest: !Not [!Condition IsTest]
          Both: !And [!Condition IsTest, !Equals [x, x]]
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Handler: app.handler
              Environment:
                Variables:
                  SUB: !Sub "${Env}-${AWS::Region}-${!Literal}"
                  SUB_VARS: !Sub ["${A}/${B}", {A: !Ref Env, B: two}]
                  JOIN: !Join [":", [a, !Ref Env, 3]]
                  PICK: !Select [1, !Ref Names]
                  SPLIT: !Select [0, !Split ["-", "x-y"]]
                  IF: !If [Both, yes-both, no]
                  GONE: !If [NotTest, here, !Ref AWS::NoValue]
                  STACK: !Ref AWS::StackName
                  ARN: !GetAtt Fn.Arn
                  LONG:
                    Fn::Join: ["", [long, {Ref: Env}]]
        """,
    )
    name = loaded.spec.name
    env = loaded.spec.functions()[f"{name}.Fn"].environment
    assert env == {
        "SUB": "test-us-east-1-${Literal}",
        "SUB_VARS": "test/two",
        "JOIN": "a:test:3",
        "PICK": "b",
        "SPLIT": "x",
        "IF": "yes-both",
        "STACK": name,
        "ARN": f"arn:aws:lambda:us-east-1:000000000000:function:{name}.Fn",
        "LONG": "longtest",
    }


def test_http_api_events_greedy_paths_and_the_default_route(tmp_path: Path) -> None:
    loaded = sam(
        tmp_path,
        FN.join(["Resources:\n", "      Events:\n"])
        + """\
        Proxy:
          Type: HttpApi
          Properties: {Path: "/items/{proxy+}", Method: ANY}
        Default:
          Type: HttpApi
        Legacy:
          Type: HttpApi
          Properties: {Path: /old, Method: post, PayloadFormatVersion: "1.0", ApiId: !Ref Api}
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: Prod
""".replace("\n        ", "\n        "),
    )
    [fn] = loaded.spec.functions().values()
    routes = [(str(e.route), e.format) for e in fn.events if isinstance(e, HttpTrigger)]
    assert routes == [("ANY /items/{proxy+}", "2.0"), ("$default", "2.0"), ("POST /old", "1.0")]
    rows = format_report(loaded.report)
    assert (
        "approximated Resources.Api: AWS::Serverless::HttpApi: its routes are served by the "
        "Lamina gateway" in rows
    )
    assert (
        "ignored      Resources.Api.Properties.StageName: API settings are not mapped yet" in rows
    )
    assert (
        "ignored      Resources.Fn.Properties.Events.Legacy.Properties.ApiId: one gateway "
        "serves every API" in rows
    )


def test_tables_map_key_sort_and_ttl(tmp_path: Path) -> None:
    loaded = sam(
        tmp_path,
        """\
        Resources:
          Simple:
            Type: AWS::Serverless::SimpleTable
          Named:
            Type: AWS::Serverless::SimpleTable
            Properties:
              TableName: people
              PrimaryKey: {Name: email, Type: String}
          Full:
            Type: AWS::DynamoDB::Table
            Properties:
              KeySchema:
                - {AttributeName: pk, KeyType: HASH}
                - {AttributeName: sk, KeyType: RANGE}
              TimeToLiveSpecification: {AttributeName: expires, Enabled: true}
              GlobalSecondaryIndexes: []
        """,
    )
    [service] = loaded.spec.services.values()
    tables = {n: (t.key, t.sort, t.ttl) for n, t in service.tables.items()}
    assert tables == {
        "Simple": ("id", None, None),
        "people": ("email", None, None),
        "Full": ("pk", "sk", "expires"),
    }
    rows = format_report(loaded.report)
    assert (
        "ignored      Resources.Full.Properties.GlobalSecondaryIndexes: no secondary indexes: "
        "query by key only" in rows
    )


def test_sqs_batches_above_100_are_approximated(tmp_path: Path) -> None:
    loaded = sam(
        tmp_path,
        "Resources:\n"
        + FN
        + """\
      Events:
        Q:
          Type: SQS
          Properties: {Queue: !GetAtt Jobs.Arn, BatchSize: 1000, Enabled: true}
  Jobs:
    Type: AWS::SQS::Queue
    Properties: {QueueName: jobs}
""",
    )
    [fn] = loaded.spec.functions().values()
    assert fn.events == (QueueTrigger(name="jobs", batch_size=100),)
    rows = format_report(loaded.report)
    assert (
        "approximated Resources.Fn.Properties.Events.Q.Properties.BatchSize: batches of at most "
        "100, not 1000" in rows
    )
    assert (
        "ignored      Resources.Fn.Properties.Events.Q.Properties.Enabled: not supported by Lamina"
        in rows
    )


def test_a_resource_whose_condition_is_false_is_not_created(tmp_path: Path) -> None:
    loaded = sam(
        tmp_path,
        """\
        Parameters:
          WithQueue: {Type: String, Default: "no"}
        Conditions:
          Make: !Equals [!Ref WithQueue, "yes"]
        Resources:
          Jobs:
            Type: AWS::SQS::Queue
            Condition: Make
        """,
    )
    assert "run          Resources.Jobs: not created: condition Make is false" in format_report(
        loaded.report
    )


def test_unknown_events_and_properties_are_reported_never_skipped(tmp_path: Path) -> None:
    loaded = sam(
        tmp_path,
        "Resources:\n"
        + FN
        + """\
      SnapStart: {ApplyOn: PublishedVersions}
      Events:
        Upload:
          Type: S3
          Properties: {Bucket: !Ref Bucket, Events: s3:ObjectCreated:*}
    DependsOn: Bucket
  Bucket:
    Type: AWS::S3::Bucket
""",
    )
    rows = format_report(loaded.report)
    assert "ignored      Resources.Fn.Properties.SnapStart: not supported by Lamina" in rows
    assert (
        "ignored      Resources.Fn.Properties.Events.Upload: event source S3 is not run by Lamina"
        in rows
    )
    assert (
        "ignored      Resources.Fn.Properties.Events.Upload.Properties.Bucket: part of the "
        "ignored S3 event" in rows
    )
    assert (
        "ignored      Resources.Fn.DependsOn: nothing is deployed, so creation order does not "
        "matter" in rows
    )
    assert (
        "ignored      Resources.Bucket: resource type AWS::S3::Bucket is not run by Lamina" in rows
    )
    assert loaded.spec.functions()[f"{loaded.spec.name}.Fn"].events == ()


@pytest.mark.parametrize(
    ("body", "params", "message"),
    [
        (
            "Resources:\n" + FN + "      Timeout: !Ref Missing\n",
            {},
            "template.yaml:8: Resources.Fn.Properties.Timeout.Ref: Ref to 'Missing': no "
            "parameter or resource of that name",
        ),
        (
            "Parameters:\n  Stage: {Type: String}\nResources:\n" + FN,
            {},
            "template.yaml:3: Parameters.Stage: parameter 'Stage' has no Default; give it with "
            "--param Stage=VALUE",
        ),
        (
            "Resources:\n" + FN + "      Runtime: nodejs20.x\n",
            {},
            "template.yaml:8: Resources.Fn.Properties.Runtime: expected a Python runtime like "
            "'python3.12', got 'nodejs20.x'",
        ),
        (
            "Resources:\n" + FN + "      MemorySize: !GetAZs us-east-1\n",
            {},
            "template.yaml:8: Resources.Fn.Properties.MemorySize.Fn::GetAZs: intrinsic "
            "function Fn::GetAZs is not supported",
        ),
        (
            "Mappings:\n  Sizes: {us-east-1: {small: 128}}\nResources:\n"
            + FN
            + "      MemorySize: !FindInMap [Sizes, !Ref AWS::Region, large]\n",
            {},
            "template.yaml:10: Resources.Fn.Properties.MemorySize.Fn::FindInMap: "
            "Mappings.Sizes.us-east-1 has no key 'large' (keys: small)",
        ),
        (
            "Resources:\n" + FN.replace("app.handler", "missing.handler"),
            {},
            "template.yaml:7: Resources.Fn.Properties.Handler: module 'missing' not found in src",
        ),
        (
            "Resources:\n" + FN + "      MemorySize: 64\n",
            {},
            "template.yaml:8: Resources.Fn.Properties.MemorySize: expected an integer "
            "128-10240 (MB), got 64",
        ),
        (
            "Resources:\n" + FN,
            {"Nope": "1"},
            "template.yaml: --param Nope: the template has no parameter 'Nope' (parameters: none)",
        ),
        (
            "Resources:\n"
            + FN
            + "      Events:\n"
            + "        A: {Type: Api, Properties: {Path: /a, Method: get}}\n"
            + "        B: {Type: HttpApi, Properties: {Path: /a, Method: GET}}\n",
            {},
            "is the same route as 'GET /a'",
        ),
        (
            "Resources:\n  Fn: {Type: AWS::Serverless::Function, Properties: {Handler: app.h}}\n",
            {},
            "a function needs 'CodeUri' (InlineCode is not supported)",
        ),
        (
            "Resources:\n  Fn: !Ref [\n",
            {},
            "template.yaml:4: invalid YAML",
        ),
    ],
    ids=[
        "unknown ref",
        "parameter without default",
        "not python",
        "unsupported intrinsic",
        "missing map key",
        "missing handler module",
        "memory below 128",
        "unknown override",
        "duplicate route",
        "no CodeUri",
        "bad yaml",
    ],
)
def test_errors_name_the_file_line_and_key(
    tmp_path: Path, body: str, params: dict[str, str], message: str
) -> None:
    assert message in fail(tmp_path, body, **params)


AUTH_API = """\
Globals:
  HttpApi:
    Auth:
      Authorizers:
        Jwt:
          JwtConfiguration: {issuer: "https://issuer.example", audience: [app]}
          IdentitySource: $request.header.Authorization
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
            Identity: {Headers: [X-Token], ReauthorizeEvery: 60}
  Gatekeeper:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Events:
        Guarded:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /private, Method: GET}
        Open:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /public, Method: GET, Auth: {Authorizer: NONE}}
        ImplicitJwt:
          Type: HttpApi
          Properties: {Path: /jwt, Method: GET, Auth: {Authorizer: Jwt}}
        Rest:
          Type: Api
          Properties: {Path: /rest, Method: GET, Auth: {ApiKeyRequired: true}}
"""


def test_authorizers_guard_routes_and_unrunnable_auth_is_never_served_public(
    tmp_path: Path,
) -> None:
    loaded = sam(tmp_path, AUTH_API)
    name = loaded.spec.name
    fn = loaded.spec.functions()[f"{name}.Fn"]
    routes = {str(e.route): e.auth for e in fn.events if isinstance(e, HttpTrigger)}
    gate = FunctionAuthorizer(function=f"{name}.Gatekeeper", ttl=60, identity=("x-token",))
    issuer = JwtSpec(issuer="https://issuer.example", audience=("app",))
    assert routes == {"GET /private": gate, "GET /public": None, "GET /jwt": issuer}
    rows = format_report(loaded.report)
    events = "ignored      Resources.Fn.Properties.Events"
    assert (
        f"{events}.Rest: route GET /rest is not served: Auth ApiKeyRequired is not supported"
        in rows
    )
    assert (
        "run          Resources.Fn.Properties.Events.Guarded: route GET /private on the Lamina "
        f"gateway, HTTP API event (payload 2.0), authorized by Lambda authorizer {name}.Gatekeeper"
        in rows
    )
    assert (
        f"run          Resources.Api.Properties.Auth.Authorizers.Gate: Lambda authorizer "
        f"{name}.Gatekeeper" in rows
    )
    assert (
        "run          Globals.HttpApi.Auth.Authorizers.Jwt: JWT authorizer: keys from the "
        "issuer's OIDC discovery; token in header authorization; checks iss "
        "https://issuer.example; aud app" in rows
    )
    assert (
        "run          Resources.Fn.Properties.Events.ImplicitJwt: route GET /jwt on the Lamina "
        "gateway, HTTP API event (payload 2.0), authorized by JWT authorizer Jwt" in rows
    )


def test_an_undefined_authorizer_is_an_error(tmp_path: Path) -> None:
    body = AUTH_API.replace("{Authorizer: NONE}", "{Authorizer: Nope}")
    assert (
        "Resources.Fn.Properties.Events.Open.Properties.Auth.Authorizer: authorizer 'Nope' is "
        "not defined in the API's Auth.Authorizers" in fail(tmp_path, body)
    )


def test_a_route_with_iam_authorization_is_not_served(tmp_path: Path) -> None:
    loaded = sam(
        tmp_path,
        """
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src
              Handler: app.handler
              Events:
                Signed:
                  Type: HttpApi
                  Properties: {Path: /signed, Method: GET, Auth: {Authorizer: AWS_IAM}}
        """,
    )
    assert loaded.spec.functions()[f"{loaded.spec.name}.Fn"].events == ()
    assert (
        "ignored      Resources.Fn.Properties.Events.Signed: route GET /signed is not served: "
        "IAM (SigV4) authorization is not checked by Lamina" in format_report(loaded.report)
    )


def test_find_in_map_reads_mappings_by_region_and_parameter(tmp_path: Path) -> None:
    body = """\
        Parameters:
          Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
        Mappings:
          StageConfig:
            dev: {Memory: 256, Table: orders-dev}
            prod: {Memory: 1024, Table: orders-prod}
          RegionConfig:
            us-east-1: {Zones: "a,b,c"}
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: src/
              Handler: app.handler
              MemorySize: !FindInMap [StageConfig, !Ref Stage, Memory]
              Environment:
                Variables:
                  TABLE:
                    Fn::FindInMap: [StageConfig, !Ref Stage, Table]
                  ZONE:
                    !Select [1, !Split [",", !FindInMap [RegionConfig, !Ref AWS::Region, Zones]]]
                  ACCOUNT: !Ref AWS::AccountId
        """
    dev = sam(tmp_path, body)
    prod = sam(tmp_path, body, Stage="prod")
    fn_dev = dev.spec.functions()[f"{dev.spec.name}.Fn"]
    fn_prod = prod.spec.functions()[f"{prod.spec.name}.Fn"]
    assert (fn_dev.memory, fn_prod.memory) == (256, 1024)
    assert fn_dev.environment == {"TABLE": "orders-dev", "ZONE": "b", "ACCOUNT": "000000000000"}
    assert fn_prod.environment["TABLE"] == "orders-prod"
    rows = format_report(dev.report)
    assert "run          Mappings.StageConfig: 2 top-level keys, read by Fn::FindInMap" in rows
    assert "run          Mappings.RegionConfig: 1 top-level keys, read by Fn::FindInMap" in rows
    assert rows[-3:] == [
        "approximated AWS::Region: = 'us-east-1': Lamina's fixed local region",
        "approximated AWS::AccountId: = '000000000000': Lamina's fixed local account id",
        rows[-1],
    ]
    assert rows[-1].endswith(", 0 ignored")


def test_http_api_cors_becomes_the_gateway_cors_policy(tmp_path: Path) -> None:
    loaded = sam(
        tmp_path,
        textwrap.dedent("""\
        Globals:
          HttpApi:
            CorsConfiguration:
              AllowOrigins: [https://app.example, https://admin.example]
              AllowMethods: [GET, post]
              AllowHeaders: [Content-Type, Authorization]
              ExposeHeaders: [X-Request-Id]
              MaxAge: 600
              AllowCredentials: true
        Resources:
          Other:
            Type: AWS::Serverless::HttpApi
            Properties:
              CorsConfiguration: true
        """)
        + FN,
    )
    cors = loaded.spec.gateway.cors
    assert cors is not None
    assert cors.origins == ("https://app.example", "https://admin.example")
    assert cors.methods == ("GET", "POST")
    assert cors.headers == ("content-type", "authorization")
    assert cors.expose_headers == ("x-request-id",)
    assert (cors.max_age, cors.credentials) == (600, True)
    rows = format_report(loaded.report)
    assert (
        "run          Globals.HttpApi.CorsConfiguration: the gateway's CORS policy for every "
        "route: origins https://app.example, https://admin.example; methods GET,POST; headers "
        "content-type,authorization; exposed x-request-id; max age 600 s; credentials" in rows
    )
    assert (
        "approximated Resources.Other.Properties.CorsConfiguration: the gateway has one CORS "
        "policy for every route: Globals.HttpApi.CorsConfiguration applies" in rows
    )


def test_rest_api_cors_strings_are_quoted_header_values(tmp_path: Path) -> None:
    loaded = sam(
        tmp_path,
        textwrap.dedent("""\
        Globals:
          Api:
            Cors:
              AllowOrigin: "'https://app.example'"
              AllowMethods: "'GET,PUT'"
              AllowHeaders: "'Content-Type,X-Api-Key'"
              MaxAge: "'300'"
        Resources:
        """)
        + FN,
    )
    cors = loaded.spec.gateway.cors
    assert cors is not None
    assert (cors.origins, cors.methods) == (("https://app.example",), ("GET", "PUT"))
    assert (cors.headers, cors.max_age) == (("content-type", "x-api-key"), 300)
    assert (
        "approximated Globals.Api.Cors: the gateway's CORS policy for every route: origins "
        "https://app.example; methods GET,PUT; headers content-type,x-api-key; max age 300 s; "
        "the gateway also sets the CORS headers of actual responses (replacing the function's), "
        "as HTTP APIs do" in format_report(loaded.report)
    )
    star = sam(tmp_path, "Globals:\n  Api:\n    Cors: \"'*'\"\nResources:\n" + FN).spec.gateway
    assert star.cors is not None and star.cors.origins == ("*",)


@pytest.mark.parametrize(
    ("cors", "error"),
    [
        (
            "Cors: https://app.example",
            "template.yaml:4: Globals.Api.Cors.AllowOrigin: expected a value in single quotes",
        ),
        (
            "Cors: {AllowOrigin: \"'*'\", AllowCredentials: true}",
            "template.yaml:4: Globals.Api.Cors.AllowCredentials: AllowCredentials: true needs "
            "explicit origins",
        ),
        (
            "Cors: {AllowMethods: \"'GET'\"}",
            "template.yaml:4: Globals.Api.Cors: Cors needs AllowOrigin",
        ),
    ],
    ids=["unquoted origin", "credentials with any origin", "no origin"],
)
def test_bad_cors_names_the_key(tmp_path: Path, cors: str, error: str) -> None:
    assert error in fail(tmp_path, f"Globals:\n  Api:\n    {cors}\nResources:\n" + FN)


def jwt_api(**environ: str) -> SamApp:
    """The jwt-api fixture; `environ` holds LAMINA_JWKS overrides (none by default)."""
    return load_sam(FIXTURES / "jwt-api" / "template.yaml", environ=environ)


def test_jwt_authorizers_guard_routes_with_default_and_route_scopes() -> None:
    loaded = jwt_api()
    fn = loaded.spec.functions()["jwt-api.OrdersFunction"]
    routes = {str(e.route): e for e in fn.events if isinstance(e, HttpTrigger)}
    users = JwtSpec(issuer="https://auth.example/pool", audience=("web", "mobile"))
    assert set(routes) == {"GET /orders", "POST /orders", "GET /health"}
    assert (routes["GET /orders"].auth, routes["GET /orders"].scopes) == (users, ("orders:read",))
    assert routes["POST /orders"].scopes == ("orders:write", "admin")
    assert routes["POST /orders"].auth == users
    assert routes["GET /health"].auth is None
    rows = format_report(loaded.report)
    at = "Resources.Api.Properties.Auth.Authorizers"
    assert (
        f"run          {at}.Users: JWT authorizer: keys from the issuer's OIDC discovery; token "
        "in header authorization; checks iss https://auth.example/pool; aud web, mobile; scopes "
        "orders:read" in rows
    )
    assert (
        f"ignored      {at}.ByQuery: identity source '$request.querystring.token' is not one "
        "request header; routes using it are not served" in rows
    )
    assert (
        "ignored      Resources.OrdersFunction.Properties.Events.Query: route GET /q is not "
        "served: its "
        "authorizer ByQuery cannot run (identity source '$request.querystring.token' is not "
        "one request header)" in rows
    )
    assert (
        "run          Resources.OrdersFunction.Properties.Events.Create: route POST /orders on "
        "the Lamina gateway, HTTP API event (payload 2.0), authorized by JWT authorizer Users "
        "with one of the scopes orders:write admin" in rows
    )
    assert (
        "run          Resources.OrdersFunction.Properties.Events.Create.Properties.Auth."
        "AuthorizationScopes: the token needs one of orders:write admin" in rows
    )


def test_jwt_keys_can_be_overridden_per_authorizer_or_for_all(tmp_path: Path) -> None:
    pem = tmp_path / "public.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n")
    url = "http://127.0.0.1:9000/jwks.json"
    by_url = jwt_api(LAMINA_JWKS_Users=url)
    by_file = jwt_api(LAMINA_JWKS=str(pem))

    def users(loaded: SamApp) -> JwtSpec:
        fn = loaded.spec.functions()["jwt-api.OrdersFunction"]
        auth = fn.events[0].auth  # type: ignore[union-attr]
        assert isinstance(auth, JwtSpec)
        return auth

    assert (users(by_url).jwks_uri, users(by_url).public_key) == (url, None)
    assert users(by_file).public_key == pem.read_text()
    assert users(by_file).issuer == "https://auth.example/pool"  # still checked
    assert (
        "approximated Resources.Api.Properties.Auth.Authorizers.Users: JWT authorizer: keys from "
        f"LAMINA_JWKS_Users={url} instead of the issuer's; token in header authorization; checks "
        "iss https://auth.example/pool; aud web, mobile; scopes orders:read"
        in format_report(by_url.report)
    )
    bad = tmp_path / "not-a-key.txt"
    bad.write_text("hello")
    with pytest.raises(ManifestError) as info:
        jwt_api(LAMINA_JWKS_Users=str(bad))
    assert (
        "Resources.Api.Properties.Auth.Authorizers.Users: LAMINA_JWKS_Users: expected a JWKS URL "
        "(http:// or https://) or a PEM public key file" in str(info.value)
    )


def rest_api() -> SamApp:
    return load_sam(FIXTURES / "rest-api" / "template.yaml", environ={})


def test_rest_api_token_and_request_authorizers_guard_routes() -> None:
    loaded = rest_api()
    name = loaded.spec.name
    fn = loaded.spec.functions()[f"{name}.PetsFunction"]
    routes = {str(e.route): e.auth for e in fn.events if isinstance(e, HttpTrigger)}
    token = FunctionAuthorizer(
        function=f"{name}.TokenGate", kind="token", ttl=60, validation="Bearer .+"
    )
    assert routes == {
        "GET /pets/{id}": token,
        "DELETE /pets/{id}": token,
        "GET /users": FunctionAuthorizer(
            function=f"{name}.RequestGate", kind="request", identity=("x-user",), ttl=0
        ),
    }
    rows = format_report(loaded.report)
    at = "Resources.Api.Properties.Auth.Authorizers"
    assert (
        f"run          {at}.Token: REST API TOKEN authorizer {name}.TokenGate: its IAM policy "
        "answer is evaluated for execute-api:Invoke on the method ARN; token in header "
        "authorization; cached 60 s; tokens must match Bearer .+" in rows
    )
    assert (
        f"ignored      {at}.ByQuery: identity sources QueryStrings are not supported (headers "
        "only); routes using it are not served" in rows
    )
    assert (
        f"ignored      {at}.Cognito: only Lambda authorizers (FunctionArn) run on REST APIs "
        "here; routes using it are not served" in rows
    )
    assert (
        "ignored      Resources.PetsFunction.Properties.Events.Query: route GET /q is not served: "
        "its authorizer ByQuery cannot run (identity sources QueryStrings are not supported "
        "(headers only))" in rows
    )


def test_an_api_requiring_api_keys_serves_none_of_its_routes(tmp_path: Path) -> None:
    app = tmp_path / "keys"
    shutil.copytree(FIXTURES / "rest-api", app)
    template = app / "template.yaml"
    text = template.read_text().replace("DefaultAuthorizer: Token", "ApiKeyRequired: true")
    template.write_text(text)
    loaded = load_sam(template, environ={})
    assert loaded.spec.functions()["keys.PetsFunction"].events == ()
    assert (
        "ignored      Resources.PetsFunction.Properties.Events.Get: route GET /pets/{id} is not "
        "served: the API requires API keys, which Lamina does not check on SAM APIs"
        in format_report(loaded.report)
    )
