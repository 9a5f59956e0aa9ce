"""Load an AWS SAM template (`Transform: AWS::Serverless-2016-10-31`) into an `AppSpec`.

Mapping (a SAM stack is one Lamina service, so its tables are shared as in the stack):
- the app and its one service are named after the template's folder (`hello-world`); every
  `AWS::Serverless::Function` becomes function `<service>.<LogicalId>` whose code folder is
  its `CodeUri` (on sys.path), with Handler, MemorySize, Timeout, Environment and
  `Globals.Function` merged in;
- events `Api` (REST payload 1.0), `HttpApi` (payload 2.0), `Schedule`/`ScheduleV2`, `SQS` and
  `SNS` become http, schedule, queue and topic triggers;
- `AWS::SQS::Queue` and `AWS::SNS::Topic` are Lamina queues and topics named by QueueName /
  TopicName or their logical id (`!Ref` gives that name, `!GetAtt X.Arn` an ARN ending in it);
- `AWS::Serverless::SimpleTable` and `AWS::DynamoDB::Table` are tables of the service
  (HASH key -> key, RANGE -> sort, TimeToLiveSpecification -> ttl), named by TableName or id.
- API authorizers (from the API resource or `Globals.Api`/`Globals.HttpApi`) guard their
  routes: HTTP API Lambda and JWT authorizers (keys by OIDC discovery, or `LAMINA_JWKS*`
  overrides, see `_sam_auth`), REST API TOKEN/REQUEST Lambda authorizers; a route whose
  authorizer cannot run here (IAM, Cognito, API keys) is not served at all, never public;
- `Cors` / `CorsConfiguration` (APIs or Globals) become the gateway's one CORS policy;
- `Mappings` are read by `Fn::FindInMap`; pseudo parameters have fixed local values, reported
  at the end when used.

Every top-level section, parameter, condition, resource, property and event gets one
`Entry` with verdict `run`, `approximated` (and how) or `ignored` (and why), recorded by the
same code that builds the spec, so `lamina sam check` is exact by construction.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lamina.errors import ManifestError
from lamina.manifest._cfn import ACCOUNT, NO_VALUE, REGION, Resolver, load_cfn_yaml
from lamina.manifest._check import Checker, build, describe
from lamina.manifest._sam_cors import http_api_cors, rest_api_cors
from lamina.manifest._sam_events import ApiAuth, Entry, EventMapper, Verdict, number
from lamina.manifest._yamlpos import child
from lamina.manifest.loader import _env, _handler, _Routes
from lamina.manifest.models import (
    AppSpec,
    AsyncSpec,
    CorsSpec,
    FunctionSpec,
    GatewaySpec,
    ServiceSpec,
    TableSpec,
    Trigger,
)

__all__ = [
    "Entry",
    "Reported",
    "SamApp",
    "format_report",
    "is_sam_template",
    "load_sam",
    "parse_sam",
]

TRANSFORM = "AWS::Serverless-2016-10-31"
FUNCTION = "AWS::Serverless::Function"
QUEUE, TOPIC = "AWS::SQS::Queue", "AWS::SNS::Topic"
TABLES = ("AWS::Serverless::SimpleTable", "AWS::DynamoDB::Table")
_TRANSFORM_LINE = re.compile(r"^Transform\s*:.*AWS::Serverless-2016-10-31", re.MULTILINE)
_NO_IAM = "no IAM: every function may use every table, queue and topic of the app"
_FUNCTION_IGNORED = {
    "Architectures": "functions run on this machine's architecture",
    "AutoPublishAlias": "no versions or aliases: the code in CodeUri runs",
    "DeadLetterQueue": "failed async invocations go to Lamina's dead-letter queue (lamina dlq)",
    "DeploymentPreference": "no deployments: the code in CodeUri runs",
    "Description": "informational",
    "EphemeralStorage": "functions use this machine's temporary folder",
    "FunctionName": "the function id is <service>.<LogicalId>",
    "KmsKeyArn": "no KMS: variables are passed as they are",
    "Layers": "no layers: install dependencies where lamina runs",
    "LoggingConfig": "function output goes to `lamina logs`",
    "PackageType": "functions run from their CodeUri folder",
    "Policies": _NO_IAM,
    "Role": _NO_IAM,
    "Tags": "informational",
    "Tracing": "Lamina traces every invocation itself (W3C trace context)",
    "VpcConfig": "no VPC: functions use this machine's network",
}
_RESOURCE_ATTRIBUTES = {
    "DependsOn": "nothing is deployed, so creation order does not matter",
    "DeletionPolicy": "nothing is deployed or deleted",
    "UpdateReplacePolicy": "nothing is deployed or replaced",
    "Metadata": "informational (build settings are not used)",
}


@dataclass(frozen=True)
class SamApp:
    """A loaded template: the app to run and the report of how each part is run."""

    spec: AppSpec
    report: tuple[Entry, ...]


def is_sam_template(text: str) -> bool:
    """Whether `text` declares the SAM transform (a top-level `Transform:` naming it)."""
    return bool(_TRANSFORM_LINE.search(text)) or ("Transform:" in text and f"- {TRANSFORM}" in text)


def load_sam(
    path: Path | str,
    *,
    parameters: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SamApp:
    """Load the SAM template file `path`; `parameters` override the template's defaults;
    `LAMINA_JWKS*` overrides of JWT authorizers' keys are read from `environ` (default:
    os.environ)."""
    file = Path(os.path.normpath(Path(path).absolute()))
    try:
        shown = str(file.relative_to(Path.cwd()))
    except ValueError:
        shown = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read the template: {exc}", file=shown) from None
    return parse_sam(text, file=file, shown=shown, parameters=parameters, environ=environ)


def parse_sam(
    text: str,
    *,
    file: Path,
    shown: str,
    parameters: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SamApp:
    """Parse template `text` of the file `file` (shown in errors as `shown`)."""
    data, lines = load_cfn_yaml(text, shown)
    check = Checker(shown, lines)
    env = os.environ if environ is None else environ
    return _Mapper(check, file, parameters or {}, env).run(data)


class Reported(Protocol):
    """A report line: `Entry` here, `ExportEntry` for `lamina export sam`."""

    @property
    def path(self) -> str: ...
    @property
    def verdict(self) -> str: ...
    @property
    def note(self) -> str: ...


def format_report(
    report: Sequence[Reported], verdicts: tuple[str, ...] = ("run", "approximated", "ignored")
) -> list[str]:
    """The report as text lines, `verdict  path: note`, then a count of each verdict."""
    rows = [f"{e.verdict:<13}{e.path}: {e.note}" for e in report]
    counts = {v: sum(1 for e in report if e.verdict == v) for v in verdicts}
    rows.append(", ".join(f"{n} {v}" for v, n in counts.items()))
    return rows


def _app_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", folder.name.lower()).strip("-")
    return name or "sam-app"


class _Mapper(EventMapper):
    def __init__(
        self,
        check: Checker,
        file: Path,
        overrides: Mapping[str, str],
        environ: Mapping[str, str],
    ) -> None:
        self.check = check
        self.environ = environ
        self.file = file
        self.root = file.parent
        self.name = _app_name(self.root)
        self.overrides = dict(overrides)
        self.entries: dict[str, Entry] = {}
        self.resources: dict[str, dict[str, Any]] = {}  # logical id -> resource, if created
        self.names: dict[str, str] = {}  # queue/topic/table logical id -> Lamina name
        self.queues: dict[str, tuple[str, dict[str, Any]]] = {}  # Lamina name -> (id, fields)
        self.resolver = Resolver(check, {}, self._ref, self._get_att, self.name)
        self.routes = _Routes(check)
        self.function_id = ""  # the function whose events are being mapped
        self.apis: dict[tuple[str, str], ApiAuth] = {}  # (Api|HttpApi, logical id or "")
        self.cors: list[tuple[str, CorsSpec, bool]] = []  # (key path, spec, REST API), in order

    def run(self, data: Any) -> SamApp:
        check = self.check
        top = check.mapping(data, "", what="a CloudFormation template mapping")
        if "Resources" not in top:
            check.fail("Resources", "a template needs 'Resources'")
        for key in top:
            if key not in (
                "Transform",
                "Parameters",
                "Mappings",
                "Conditions",
                "Globals",
                "Resources",
                "Outputs",
            ):
                why = (
                    "informational"
                    if key in ("AWSTemplateFormatVersion", "Description")
                    else ("not used by Lamina")
                )
                self.record(key, "ignored", why)
        self.record("Transform", "run", f"{TRANSFORM}: SAM resources are mapped by Lamina")
        self._parameters(top.get("Parameters"))
        self._mappings(top.get("Mappings"))
        self.resolver.raw_conditions = check.mapping(top.get("Conditions"), "Conditions")
        for name in self.resolver.raw_conditions:
            value = self.resolver.condition(name, child("Conditions", name))
            self.record(child("Conditions", name), "run", "true" if value else "false")
        resources = check.mapping(top.get("Resources"), "Resources")
        for logical, body in resources.items():
            self._declare(logical, body)
        globals_ = check.mapping(top.get("Globals"), "Globals")
        function_globals = check.mapping(globals_.get("Function"), "Globals.Function")
        for section, body in globals_.items():
            if section != "Function":
                for key, value in check.mapping(body, child("Globals", section)).items():
                    if key == "Auth" and section in ("Api", "HttpApi"):
                        where = child(child("Globals", section), "Auth")
                        self.apis[(section, "")] = self._api_auth(value, where, section == "Api")
                        self.record(where, "run", "authorizers of the template's routes")
                        continue
                    if (section, key) in _CORS_KEYS:
                        self._cors(section, value, child(child("Globals", section), key))
                        continue
                    self.record(
                        child(child("Globals", section), key),
                        "ignored",
                        f"Globals.{section} settings are not used by Lamina",
                    )
        tables: dict[str, TableSpec] = {}
        functions: dict[str, FunctionSpec] = {}
        for logical, body in self.resources.items():  # functions last: they use queue settings
            kind = body["Type"]
            if kind == FUNCTION:
                continue
            if kind in TABLES:
                tables[self.names[logical]] = self._table(logical, body)
            elif kind == QUEUE:
                self._queue(logical, body)
            elif kind == TOPIC:
                self._topic(logical, body)
            else:
                self._other(logical, body)
        for logical, body in self.resources.items():
            if body["Type"] == FUNCTION:
                functions[logical] = self._function(logical, body, function_globals)
        for key in function_globals:  # not recorded yet: no function used it
            why = "every function sets its own" if functions else "the template has no function"
            self.record(child("Globals.Function", key), "ignored", why)
        for key in check.mapping(top.get("Outputs"), "Outputs"):
            self.record(child("Outputs", key), "ignored", "outputs are not exported (no stack)")
        gateway = GatewaySpec(cors=self._gateway_cors())
        for name, value in self.resolver.pseudo_used.items():
            verdict, why = _PSEUDO[name]
            shown = "(no value)" if value is NO_VALUE else repr(value)
            self.entries[name] = Entry(name, verdict, f"= {shown}: {why}")  # listed last
        self.routes.check_auth(GatewaySpec(), {f.id for f in functions.values()})
        service = build(
            check,
            ServiceSpec,
            "Resources",
            name=self.name,
            path=self.root,
            tables=tables,
            functions=functions,
        )
        spec = build(
            check,
            AppSpec,
            "",
            name=self.name,
            root=self.root,
            file=self.file,
            gateway=gateway,
            services={self.name: service},
        )
        order = sorted(self.entries.values(), key=lambda e: (e.line is None, e.line or 0))
        return SamApp(spec, tuple(order))

    # --- Parameters ---------------------------------------------------------------------

    def _parameters(self, value: Any) -> None:
        declared = self.check.mapping(value, "Parameters")
        for name in self.overrides:
            if name not in declared:
                known = ", ".join(declared) or "none"
                raise ManifestError(
                    f"--param {name}: the template has no parameter {name!r} (parameters: {known})",
                    file=self.check.file,
                )
        for name, body in declared.items():
            at = child("Parameters", name)
            body = self.check.mapping(body, at, required=("Type",))
            if name in self.overrides:
                raw: Any = self.overrides[name]
                source = "given with --param"
            elif "Default" in body:
                raw, source = body["Default"], "the default"
            else:
                self.check.fail(
                    at, f"parameter {name!r} has no Default; give it with --param {name}=VALUE"
                )
            text = "" if raw is None else str(raw)
            allowed = body.get("AllowedValues")
            if isinstance(allowed, list) and text not in [str(a) for a in allowed]:
                choices = ", ".join(str(a) for a in allowed)
                self.check.fail(at, f"parameter {name!r} is {text!r}; expected one of {choices}")
            kind = str(body["Type"])
            value_: Any = (
                text.split(",") if kind.startswith(("CommaDelimitedList", "List<")) else text
            )
            self.resolver.parameters[name] = value_
            self.record(at, "run", f"= {text!r} ({source})")

    def _mappings(self, value: Any) -> None:
        """`Mappings: {Map: {TopKey: {SecondKey: value}}}`, read by `Fn::FindInMap`."""
        check = self.check
        for name, body in check.mapping(value, "Mappings").items():
            at = child("Mappings", name)
            levels: dict[str, dict[str, Any]] = {}
            for top, second in check.mapping(body, at).items():
                inner = check.mapping(
                    second, child(at, str(top)), what="a mapping of keys to values"
                )
                levels[str(top)] = {str(k): v for k, v in inner.items()}
            self.resolver.mappings[str(name)] = levels
            self.record(at, "run", f"{len(levels)} top-level keys, read by Fn::FindInMap")

    # --- CORS ---------------------------------------------------------------------------

    def _cors(self, section: str, value: Any, where: str) -> None:
        value = self.resolver.resolve(value, where)
        if section == "Api":
            self.cors.append((where, rest_api_cors(self.check, value, where), True))
        else:
            self.cors.append((where, http_api_cors(self.check, value, where), False))

    def _gateway_cors(self) -> CorsSpec | None:
        """The gateway's one CORS policy: the first API's (Globals first), each reported."""
        if not self.cors:
            return None
        first_at, chosen, _ = self.cors[0]
        for where, spec, rest in self.cors:
            if spec != chosen:
                self.record(
                    where,
                    "approximated",
                    f"the gateway has one CORS policy for every route: {first_at} applies",
                )
                continue
            note = f"the gateway's CORS policy for every route: {_cors_text(spec)}"
            if rest:
                self.record(
                    where,
                    "approximated",
                    f"{note}; the gateway also sets the CORS headers of actual responses "
                    "(replacing the function's), as HTTP APIs do",
                )
            else:
                self.record(where, "run", note)
        return chosen

    # --- Resources ----------------------------------------------------------------------

    def _declare(self, logical: str, body: Any) -> None:
        at = child("Resources", logical)
        body = self.check.mapping(body, at, required=("Type",))
        self.check.name(logical, at)
        if "Condition" in body and not self.resolver.condition(
            body["Condition"], child(at, "Condition")
        ):
            self.record(at, "run", f"not created: condition {body['Condition']} is false")
            return
        self.resources[logical] = body

    def _name(self, logical: str, prop: str) -> str:
        """The Lamina name of a queue, topic or table: its `prop` (QueueName, ...) or id."""
        if logical not in self.names:
            at = child(child(child("Resources", logical), "Properties"), prop)
            props = self.resources[logical].get("Properties") or {}
            if prop in props:
                given = self.resolver.resolve(props[prop], at)
                self.names[logical] = self.check.name(given, at, max_len=80)
            else:
                self.names[logical] = logical
        return self.names[logical]

    def _ref(self, logical: str) -> Any:
        body = self.resources.get(logical)
        if body is None:
            return None
        kind = body["Type"]
        if kind == FUNCTION:
            return f"{self.name}.{logical}"
        if kind == QUEUE:
            return self._name(logical, "QueueName")
        if kind == TOPIC:
            return self._name(logical, "TopicName")
        if kind in TABLES:
            return self._name(logical, "TableName")
        return logical

    def _get_att(self, logical: str, attr: str) -> Any:
        body = self.resources.get(logical)
        if body is None:
            return None
        kind, name = body["Type"], self._ref(logical)
        attrs: dict[str, str] = {}
        if kind == QUEUE:
            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
            attrs = {
                "Arn": arn,
                "QueueName": name,
                "QueueUrl": f"https://sqs.local/{ACCOUNT}/{name}",
            }
        elif kind == TOPIC:
            attrs = {"TopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}", "TopicName": name}
        elif kind in TABLES:
            arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            attrs = {"Arn": arn, "StreamArn": f"{arn}/stream/lamina"}
        elif kind == FUNCTION:
            attrs = {"Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"}
        return attrs.get(attr)

    def _attributes(self, at: str, body: dict[str, Any]) -> None:
        for key in body:
            if key in _RESOURCE_ATTRIBUTES:
                self.record(child(at, key), "ignored", _RESOURCE_ATTRIBUTES[key])
            elif key == "Condition":
                self.record(child(at, key), "run", f"condition {body[key]} is true: created")

    def _props(self, at: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.check.mapping(body.get("Properties"), child(at, "Properties"))

    def _function(
        self, logical: str, body: dict[str, Any], globals_: dict[str, Any]
    ) -> FunctionSpec:
        check = self.check
        at = child("Resources", logical)
        props_at = child(at, "Properties")
        own = self._props(at, body)
        merged: dict[str, tuple[Any, str]] = {
            k: (v, child("Globals.Function", k)) for k, v in globals_.items()
        }
        for key, value in own.items():
            if key == "Environment" and "Environment" in merged:  # variables merge, as in SAM
                outer = (merged["Environment"][0] or {}).get("Variables") or {}
                inner = (value or {}).get("Variables") or {}
                value = {**(value or {}), "Variables": {**outer, **inner}}
            merged[key] = (value, child(props_at, key))
        fid = self.function_id = f"{self.name}.{logical}"
        self.record(at, "run", f"{FUNCTION} -> function {fid}")
        self._attributes(at, body)
        for key in ("Handler", "CodeUri"):
            if key not in merged:
                check.fail(props_at, f"a function needs {key!r} (InlineCode is not supported)")
        code_at = merged["CodeUri"][1]
        code = self.resolver.resolve(merged["CodeUri"][0], code_at)
        if not isinstance(code, str):
            check.fail(
                code_at,
                f"expected a local code folder, got {describe(code)} (S3 code is not supported)",
            )
        folder = Path(os.path.normpath(self.root / code))
        if not folder.is_dir():
            check.fail(code_at, f"code folder {code!r} does not exist next to the template")
        fields: dict[str, Any] = {"id": fid, "name": logical, "service": self.name, "path": folder}
        self.record(code_at, "run", f"code folder {code}")
        async_fields: dict[str, Any] = {}
        events: list[Trigger] = []
        for key, (raw, where) in merged.items():
            if key == "CodeUri":
                continue
            value = self.resolver.resolve(raw, where) if key not in _FUNCTION_IGNORED else raw
            if key == "Handler":
                fields["handler"] = _handler(check, value, where, folder, self.root)
                self.record(where, "run", f"handler {value}")
            elif key == "Runtime":
                self._runtime(value, where)
            elif key == "MemorySize":
                fields["memory"] = check.integer(number(value), where, 128, 10240, "MB")
                self.record(where, "run", f"{fields['memory']} MB")
            elif key == "Timeout":
                fields["timeout"] = check.seconds(number(value), where, positive=True, hi=900)
                self.record(where, "run", f"{fields['timeout']:g} s")
            elif key == "Environment":
                env = check.mapping(value, where, allowed=("Variables",))
                fields["env"] = _env(check, env.get("Variables"), child(where, "Variables"))
                self.record(where, "run", f"{len(fields['env'])} variables")
            elif key == "ReservedConcurrentExecutions":
                fields["max_instances"] = check.integer(number(value), where, 1, 1000)
                self.record(where, "approximated", f"at most {value} instances at once")
            elif key == "EventInvokeConfig":
                self._invoke_config(value, where, async_fields)
            elif key == "Events":
                for name, event in check.mapping(value, where).items():
                    trigger = self._event(fid, name, event, child(where, name))
                    if trigger is not None:
                        events.append(trigger)
            elif key in _FUNCTION_IGNORED:
                self.record(where, "ignored", _FUNCTION_IGNORED[key])
            else:
                self.record(where, "ignored", "not supported by Lamina")
        fields["events"] = tuple(events)
        if async_fields:
            fields["async_invoke"] = build(check, AsyncSpec, at, **async_fields)
        return build(check, FunctionSpec, at, **fields)

    def _runtime(self, value: Any, where: str) -> None:
        here = f"python{sys.version_info.major}.{sys.version_info.minor}"
        if not isinstance(value, str) or not value.startswith("python3"):
            self.check.fail(
                where, f"expected a Python runtime like 'python3.12', got {describe(value)}"
            )
        if value == here:
            self.record(where, "run", f"{value}, the Python running lamina")
        else:
            self.record(where, "approximated", f"runs on {here} (the Python running lamina)")

    def _invoke_config(self, value: Any, where: str, fields: dict[str, Any]) -> None:
        body = self.check.mapping(value, where)
        for key, item in body.items():
            at = child(where, key)
            if key == "MaximumRetryAttempts":
                fields["max_retries"] = self.check.integer(number(item), at, 0, 2, "retries")
                self.record(at, "run", f"{fields['max_retries']} retries of async invocations")
            elif key == "MaximumEventAgeInSeconds":
                fields["max_event_age"] = self.check.seconds(
                    number(item), at, positive=True, hi=21600
                )
                self.record(at, "run", f"async events expire after {item} s")
            else:
                self.record(at, "ignored", "not supported by Lamina")

    # --- Queues, topics, tables, others -------------------------------------------------

    def _queue(self, logical: str, body: dict[str, Any]) -> None:
        at = child("Resources", logical)
        props_at = child(at, "Properties")
        props = self._props(at, body)
        name = self._name(logical, "QueueName")
        self.record(at, "run", f"{QUEUE} -> queue {name}")
        self._attributes(at, body)
        settings: dict[str, Any] = {}
        for key, raw in props.items():
            where = child(props_at, key)
            value = self.resolver.resolve(raw, where)
            if key == "QueueName":
                self.record(where, "run", f"queue {name}")
            elif key == "VisibilityTimeout":
                settings["visibility_timeout"] = self.check.seconds(
                    number(value), where, positive=True, hi=43200
                )
                self.record(where, "run", f"messages are leased for {value} s")
            elif key == "RedrivePolicy" and isinstance(value, dict) and "maxReceiveCount" in value:
                count = self.check.integer(
                    number(value["maxReceiveCount"]), child(where, "maxReceiveCount"), 1, 1000
                )
                settings["max_receive_count"] = count
                self.record(
                    where,
                    "approximated",
                    f"dead-letters after {count} deliveries into Lamina's dead-letter queue "
                    "(lamina dlq), not into deadLetterTargetArn",
                )
            else:
                self.record(where, "ignored", _QUEUE_IGNORED.get(key, "not supported by Lamina"))
        self.queues[name] = (logical, settings)

    def _topic(self, logical: str, body: dict[str, Any]) -> None:
        at = child("Resources", logical)
        props = self._props(at, body)
        name = self._name(logical, "TopicName")
        self.record(at, "run", f"{TOPIC} -> topic {name}")
        self._attributes(at, body)
        for key in props:
            where = child(child(at, "Properties"), key)
            if key == "TopicName":
                self.record(where, "run", f"topic {name}")
            elif key == "Subscription":
                self.record(where, "ignored", "only functions' SNS events subscribe")
            else:
                self.record(
                    where,
                    "ignored",
                    "informational"
                    if key in ("DisplayName", "Tags")
                    else "not supported by Lamina",
                )

    def _table(self, logical: str, body: dict[str, Any]) -> TableSpec:
        check = self.check
        at = child("Resources", logical)
        props_at = child(at, "Properties")
        props = self._props(at, body)
        name = self._name(logical, "TableName")
        self.record(at, "run", f"{body['Type']} -> table {name} of service {self.name}")
        self._attributes(at, body)
        fields: dict[str, Any] = {}
        simple = body["Type"] == TABLES[0]
        for key, raw in props.items():
            where = child(props_at, key)
            value = self.resolver.resolve(raw, where)
            if key == "TableName":
                self.record(where, "run", f"table {name}")
            elif key == "PrimaryKey" and simple:
                primary = check.mapping(value, where, required=("Name",))
                fields["key"] = check.string(primary["Name"], child(where, "Name"))
                self.record(where, "run", f"partition key {fields['key']} (types are not enforced)")
            elif key == "KeySchema" and not simple:
                for index, item in enumerate(check.sequence(value, where)):
                    item = check.mapping(
                        item, child(where, index), required=("AttributeName", "KeyType")
                    )
                    role = {"HASH": "key", "RANGE": "sort"}.get(str(item["KeyType"]))
                    if role is None:
                        check.fail(
                            child(child(where, index), "KeyType"),
                            f"expected HASH or RANGE, got {describe(item['KeyType'])}",
                        )
                    fields[role] = check.string(
                        item["AttributeName"], child(child(where, index), "AttributeName")
                    )
                keys = f"partition key {fields.get('key')}" + (
                    f", sort key {fields['sort']}" if "sort" in fields else ""
                )
                self.record(where, "run", keys)
            elif key == "AttributeDefinitions" and not simple:
                self.record(where, "approximated", "attribute types are not enforced")
            elif key == "TimeToLiveSpecification" and not simple:
                ttl = check.mapping(value, where)
                if ttl.get("Enabled") in (True, "true") and ttl.get("AttributeName"):
                    fields["ttl"] = check.string(
                        ttl["AttributeName"], child(where, "AttributeName")
                    )
                    self.record(where, "run", f"items expire at epoch seconds in {fields['ttl']}")
                else:
                    self.record(where, "run", "TTL disabled")
            else:
                self.record(where, "ignored", _TABLE_IGNORED.get(key, "not supported by Lamina"))
        if simple and "key" not in fields:
            fields["key"] = "id"  # SAM's default primary key: id (String)
            self.record(
                at, "run", f"{body['Type']} -> table {name} of service {self.name} (key id)"
            )
        if "key" not in fields:
            check.fail(props_at, "a table needs a HASH key in KeySchema")
        return build(check, TableSpec, at, **fields)

    def _other(self, logical: str, body: dict[str, Any]) -> None:
        at = child("Resources", logical)
        kind = str(body["Type"])
        if kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi"):
            self.record(at, "approximated", f"{kind}: its routes are served by the Lamina gateway")
            section = "Api" if kind == "AWS::Serverless::Api" else "HttpApi"
            props = self._props(at, body)
            if "Auth" in props:
                where = child(child(at, "Properties"), "Auth")
                self.apis[(section, logical)] = self._api_auth(
                    props["Auth"], where, section == "Api"
                )
            elif (section, "") in self.apis:
                self.apis[(section, logical)] = self.apis[(section, "")]
            for key in props:
                if (section, key) in _CORS_KEYS:
                    self._cors(section, props[key], child(child(at, "Properties"), key))
                    continue
                self.record(
                    child(child(at, "Properties"), key),
                    "run" if key == "Auth" else "ignored",
                    "authorizers of its routes"
                    if key == "Auth"
                    else "API settings are not mapped yet",
                )
        else:
            self.record(at, "ignored", f"resource type {kind} is not run by Lamina")
            for key in self._props(at, body):
                self.record(
                    child(child(at, "Properties"), key), "ignored", f"part of the ignored {kind}"
                )
        self._attributes(at, body)


_CORS_KEYS = {("Api", "Cors"), ("HttpApi", "CorsConfiguration")}


def _cors_text(spec: CorsSpec) -> str:
    parts = [f"origins {', '.join(spec.origins)}", f"methods {','.join(spec.methods)}"]
    if spec.headers:
        parts.append(f"headers {','.join(spec.headers)}")
    if spec.expose_headers:
        parts.append(f"exposed {','.join(spec.expose_headers)}")
    if spec.max_age:
        parts.append(f"max age {spec.max_age} s")
    if spec.credentials:
        parts.append("credentials")
    return "; ".join(parts)


_PSEUDO: dict[str, tuple[Verdict, str]] = {  # pseudo parameters: their local values
    "AWS::Region": ("approximated", "Lamina's fixed local region"),
    "AWS::AccountId": ("approximated", "Lamina's fixed local account id"),
    "AWS::StackName": ("approximated", "the app name (the template's folder)"),
    "AWS::StackId": ("approximated", "a local stack ARN made of the app name"),
    "AWS::Partition": ("run", "as on AWS"),
    "AWS::URLSuffix": ("run", "as on AWS"),
    "AWS::NoValue": ("run", "the property is removed, as on AWS"),
}
_QUEUE_IGNORED = {
    "MessageRetentionPeriod": "messages are kept until consumed or dead-lettered",
    "DelaySeconds": "messages are delivered at once",
    "FifoQueue": "no FIFO ordering guarantee",
    "ContentBasedDeduplication": "no deduplication",
    "KmsMasterKeyId": "no KMS",
    "SqsManagedSseEnabled": "no server-side encryption",
    "ReceiveMessageWaitTimeSeconds": "the trigger polls the queue itself",
    "MaximumMessageSize": "no size limit",
    "Tags": "informational",
}
_TABLE_IGNORED = {
    "BillingMode": "no billing: the store holds the table",
    "ProvisionedThroughput": "no capacity limits",
    "GlobalSecondaryIndexes": "no secondary indexes: query by key only",
    "LocalSecondaryIndexes": "no secondary indexes: query by key only",
    "StreamSpecification": "no table streams",
    "SSESpecification": "no server-side encryption",
    "PointInTimeRecoverySpecification": "back up the store instead",
    "DeletionProtectionEnabled": "nothing is deployed or deleted",
    "Tags": "informational",
}
