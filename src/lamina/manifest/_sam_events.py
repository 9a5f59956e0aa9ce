"""Events of a SAM function (Api, HttpApi, Schedule, ScheduleV2, SQS, SNS) and HTTP API
authorizers (Lambda and JWT), mapped to triggers; each step records its report entry. The
base of the SAM mapper in `lamina.manifest.sam`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lamina.manifest._cfn import Resolver
from lamina.manifest._check import Checker, build
from lamina.manifest._gateway import parse_scopes
from lamina.manifest._sam_auth import (
    JwtAuthorizer,
    RestAuthorizer,
    authorizer_function,
    jwt_authorizer,
    rest_authorizer,
)
from lamina.manifest._triggers import _expression
from lamina.manifest._yamlpos import child
from lamina.manifest.loader import _Routes
from lamina.manifest.models import (
    FunctionAuthorizer,
    HttpTrigger,
    JwtSpec,
    QueueTrigger,
    ScheduleTrigger,
    TopicTrigger,
    Trigger,
)
from lamina.manifest.routekey import RouteKey

__all__ = ["ApiAuth", "Entry", "EventMapper", "Verdict", "number"]

Verdict = Literal["run", "approximated", "ignored"]


@dataclass(frozen=True)
class Entry:
    """One line of the compatibility report."""

    path: str  # key path in the template, e.g. `Resources.Fn.Properties.Handler`
    verdict: Verdict
    note: str  # what it became, how it is approximated, or why it is ignored
    line: int | None = None


@dataclass(frozen=True)
class ApiAuth:
    """An API's authorizers by name (a reason string when one cannot run) and its default."""

    authorizers: dict[str, FunctionAuthorizer | JwtAuthorizer | str]
    default: str | None
    closed: str = ""  # why none of its routes can be served (API keys, a resource policy)


@dataclass(frozen=True)
class RouteAuth:
    """What guards one route: its authorizer (None: public) and the JWT scopes it needs."""

    auth: FunctionAuthorizer | JwtSpec | None = None
    scopes: tuple[str, ...] = ()
    label: str = ""  # how the report names the authorizer
    unserved: str = ""  # why the route cannot be served, if it cannot


class EventMapper:
    """Maps one function's events; the SAM mapper fills in these attributes."""

    check: Checker
    resolver: Resolver
    routes: _Routes
    entries: dict[str, Entry]  # report entries by key path, first one wins
    apis: dict[tuple[str, str], ApiAuth]  # (Api|HttpApi, API logical id or "") -> its Auth
    queues: dict[str, tuple[str, dict[str, Any]]]  # queue name -> (logical id, trigger fields)
    function_id: str  # the function whose events are being mapped
    environ: Mapping[str, str]  # where LAMINA_JWKS overrides are read

    def record(self, path: str, verdict: Verdict, note: str) -> None:
        """Record the verdict on `path` (the first verdict on a path stands)."""
        if path not in self.entries:
            self.entries[path] = Entry(path, verdict, note, self.check.line(path))

    # --- Events -------------------------------------------------------------------------

    def _event(self, fid: str, name: str, value: Any, at: str) -> Trigger | None:
        body = self.check.mapping(value, at, required=("Type",))
        kind = body["Type"]
        props_at = child(at, "Properties")
        props = self.check.mapping(
            self.resolver.resolve(body.get("Properties"), props_at), props_at
        )
        handlers: dict[str, Callable[[str, dict[str, Any], str], Trigger | None]] = {
            "Api": self._api,
            "HttpApi": self._api,
            "Schedule": self._schedule,
            "ScheduleV2": self._schedule,
            "SQS": self._sqs,
            "SNS": self._sns,
        }
        if kind not in handlers:
            self.record(at, "ignored", f"event source {kind} is not run by Lamina")
            for key in props:
                self.record(child(props_at, key), "ignored", f"part of the ignored {kind} event")
            return None
        return handlers[kind](kind, props, at)

    def _done(self, props_at: str, props: dict[str, Any], used: dict[str, str]) -> None:
        """Record `used` properties as run, every other one as ignored."""
        for key in props:
            if key in used:
                self.record(child(props_at, key), "run", used[key])
            else:
                self.record(
                    child(props_at, key),
                    "ignored",
                    _EVENT_IGNORED.get(key, "not supported by Lamina"),
                )

    def _api(self, kind: str, props: dict[str, Any], at: str) -> Trigger | None:
        props_at = child(at, "Properties")
        rest = kind == "Api"
        fmt = "1.0" if rest else str(props.get("PayloadFormatVersion", "2.0"))
        if fmt not in ("1.0", "2.0"):
            self.check.fail(
                child(props_at, "PayloadFormatVersion"), f"expected '1.0' or '2.0', got {fmt!r}"
            )
        if "Path" not in props and not rest:
            key = "$default"
        else:
            if rest:
                for need in ("Path", "Method"):
                    if need not in props:
                        self.check.fail(props_at, f"an Api event needs {need!r}")
            method = str(props.get("Method", "ANY")).upper()
            method = "ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method
            key = f"{method} {props.get('Path')}"
        try:
            route = RouteKey.parse(key)
        except ValueError as exc:
            self.check.fail(child(props_at, "Path"), str(exc))
        used = {
            "Path": f"path {route.path}",
            "Method": f"method {route.method}",
            "PayloadFormatVersion": f"payload {fmt}",
        }
        guard = self._route_auth(kind, props, props_at)
        if guard.unserved:
            self.record(at, "ignored", f"route {route} is not served: {guard.unserved}")
            for key in props:
                self.record(child(props_at, key), "ignored", "part of the route not served")
            return None
        auth = guard.auth
        trigger = build(
            self.check, HttpTrigger, at, route=route, format=fmt, auth=auth, scopes=guard.scopes
        )
        self.routes.add(route, self.function_id, child(props_at, "Path"))
        if isinstance(auth, FunctionAuthorizer):
            self.routes.auth_at.append((trigger, child(props_at, "Auth")))
        what = "REST API proxy event (payload 1.0)" if rest else f"HTTP API event (payload {fmt})"
        by = f", authorized by {guard.label}" if auth is not None else ""
        if guard.scopes:
            by += f" with one of the scopes {' '.join(guard.scopes)}"
        self.record(at, "run", f"route {route} on the Lamina gateway, {what}{by}")
        if "Auth" in props:
            used["Auth"] = guard.label if auth is not None else "no authorizer"
        self._done(props_at, props, used)
        return trigger

    def _route_auth(self, kind: str, props: dict[str, Any], props_at: str) -> RouteAuth:
        """The route's authorizer, or why the route cannot be served (never served public)."""
        api_id = props.get("RestApiId" if kind == "Api" else "ApiId")
        api = self.apis.get((kind, str(api_id) if api_id else ""))
        auth_at = child(props_at, "Auth")
        event_auth = self.check.mapping(props.get("Auth"), auth_at)
        other = sorted(k for k in event_auth if k not in ("Authorizer", "AuthorizationScopes"))
        if other:
            return RouteAuth(unserved=f"Auth {', '.join(other)} is not supported")
        if api is not None and api.closed:
            return RouteAuth(unserved=api.closed)
        name = event_auth.get("Authorizer", api.default if api else None)
        scopes_at = child(auth_at, "AuthorizationScopes")
        scopes = (
            parse_scopes(self.check, event_auth["AuthorizationScopes"], scopes_at)
            if "AuthorizationScopes" in event_auth
            else ()
        )
        if name is None or name == "NONE":
            if scopes:
                self.record(scopes_at, "ignored", "the route has no authorizer to check scopes")
            return RouteAuth()
        if name == "AWS_IAM":
            return RouteAuth(unserved="IAM (SigV4) authorization is not checked by Lamina")
        chosen = api.authorizers.get(str(name)) if api else None
        if chosen is None:
            self.check.fail(
                child(auth_at, "Authorizer"),
                f"authorizer {name!r} is not defined in the API's Auth.Authorizers",
            )
        if isinstance(chosen, str):
            return RouteAuth(unserved=f"its authorizer {name} cannot run ({chosen})")
        if isinstance(chosen, JwtAuthorizer):
            if scopes:
                self.record(scopes_at, "run", f"the token needs one of {' '.join(scopes)}")
            return RouteAuth(chosen.spec, scopes or chosen.scopes, f"JWT authorizer {name}")
        if scopes:
            self.record(scopes_at, "ignored", "scopes apply to JWT authorizers only")
        return RouteAuth(chosen, (), f"Lambda authorizer {chosen.function}")

    def _api_auth(self, value: Any, at: str, rest: bool) -> ApiAuth:
        """An API's `Auth`: its Lambda authorizers (HTTP APIs only) and default authorizer."""
        check = self.check
        body = check.mapping(self.resolver.resolve(value, at), at)
        authorizers: dict[str, FunctionAuthorizer | JwtAuthorizer | str] = {}
        list_at = child(at, "Authorizers")
        for name, spec in check.mapping(body.get("Authorizers"), list_at).items():
            where = child(list_at, name)
            spec = check.mapping(spec, where)
            if rest and "FunctionArn" in spec:
                rest_found = rest_authorizer(check, spec, where)
                if isinstance(rest_found, RestAuthorizer):
                    authorizers[name] = rest_found.spec
                    self.record(where, rest_found.verdict, rest_found.note)
                    continue
                why = rest_found
            elif rest:
                why = "only Lambda authorizers (FunctionArn) run on REST APIs here"
            elif "JwtConfiguration" in spec:
                found = jwt_authorizer(check, name, spec, where, self.environ)
                if isinstance(found, JwtAuthorizer):
                    authorizers[name] = found
                    self.record(where, found.verdict, found.note)
                    continue
                why = found
            elif "FunctionArn" in spec:
                authorizers[name] = self._lambda_authorizer(spec, where)
                continue
            else:
                why = "not a Lambda or JWT authorizer"
            authorizers[name] = why
            self.record(where, "ignored", f"{why}; routes using it are not served")
        default = body.get("DefaultAuthorizer")
        closed = ""  # why none of the API's routes can be served
        for key in body:
            if key == "DefaultAuthorizer":
                self.record(child(at, key), "run", f"routes use {default} unless they say NONE")
            elif key == "ApiKeyRequired" and body[key] in (True, "true"):
                closed = "the API requires API keys, which Lamina does not check on SAM APIs"
                self.record(child(at, key), "ignored", f"{closed}; its routes are not served")
            elif key == "ResourcePolicy":
                closed = "the API's resource policy is not evaluated by Lamina"
                self.record(child(at, key), "ignored", f"{closed}; its routes are not served")
            elif key != "Authorizers":
                self.record(
                    child(at, key), "ignored", _AUTH_IGNORED.get(key, "not supported by Lamina")
                )
        self.record(list_at, "run", f"{len(authorizers)} authorizers")
        return ApiAuth(authorizers, None if default is None else str(default), closed)

    def _lambda_authorizer(self, spec: dict[str, Any], where: str) -> FunctionAuthorizer:
        function = authorizer_function(self.check, spec, where)
        identity = self.check.mapping(spec.get("Identity"), child(where, "Identity"))
        headers = identity.get("Headers", ["Authorization"])
        ttl = identity.get("ReauthorizeEvery", 0)
        fields = {
            "function": function,
            "ttl": self.check.seconds(
                number(ttl), child(where, "Identity"), positive=False, hi=3600
            ),
            "identity": tuple(str(h).lower() for h in self.check.sequence(headers, where)),
        }
        authorizer = build(self.check, FunctionAuthorizer, where, **fields)
        simple = (
            spec.get("EnableSimpleResponses") in (True, "true")
            and str(spec.get("AuthorizerPayloadFormatVersion", "2.0")) == "2.0"
        )
        if simple:
            self.record(where, "run", f"Lambda authorizer {authorizer.function}")
        else:
            self.record(
                where,
                "approximated",
                f"Lambda authorizer {authorizer.function}; it must answer the simple response "
                "{isAuthorized, context}",
            )
        return authorizer

    def _schedule(self, kind: str, props: dict[str, Any], at: str) -> Trigger | None:
        props_at = child(at, "Properties")
        field = "Schedule" if kind == "Schedule" else "ScheduleExpression"
        if field not in props:
            self.check.fail(props_at, f"a {kind} event needs {field!r}")
        expression = _expression(self.check, props[field], child(props_at, field))
        used = {field: expression}
        payload: Any = None
        if "Input" in props:
            try:
                payload = json.loads(str(props["Input"]))
            except ValueError as exc:
                self.check.fail(child(props_at, "Input"), f"expected a JSON text, got {exc}")
            used["Input"] = "the event passed to the function"
        enabled = props.get("Enabled", True) not in (False, "false", "False")
        if str(props.get("State", "ENABLED")).upper() == "DISABLED":
            enabled = False
        for key in ("Enabled", "State"):
            if key in props:
                used[key] = "enabled" if enabled else "disabled: no schedule is created"
        if "ScheduleExpressionTimezone" in props:
            self.record(
                child(props_at, "ScheduleExpressionTimezone"),
                "approximated",
                "cron expressions are read in UTC",
            )
        self._done(props_at, props, used)
        if not enabled:
            self.record(at, "run", f"{kind} disabled: no schedule")
            return None
        self.record(at, "run", f"schedule {expression}")
        return build(self.check, ScheduleTrigger, at, expression=expression, input=payload)

    def _arn_name(self, value: Any, at: str, service: str) -> str:
        if isinstance(value, str) and value.startswith(f"arn:aws:{service}:"):
            value = value.rsplit(":", 1)[1]
        return self.check.name(value, at, max_len=80)

    def _sqs(self, kind: str, props: dict[str, Any], at: str) -> Trigger:
        props_at = child(at, "Properties")
        if "Queue" not in props:
            self.check.fail(props_at, "an SQS event needs 'Queue' (e.g. !GetAtt MyQueue.Arn)")
        name = self._arn_name(props["Queue"], child(props_at, "Queue"), "sqs")
        fields: dict[str, Any] = {"name": name}
        used = {"Queue": f"queue {name}"}
        if "BatchSize" in props:
            size = self.check.integer(
                number(props["BatchSize"]), child(props_at, "BatchSize"), 1, 10000
            )
            fields["batch_size"] = min(size, 100)
            if size > 100:
                self.record(
                    child(props_at, "BatchSize"),
                    "approximated",
                    f"batches of at most 100, not {size}",
                )
            used["BatchSize"] = f"batches of up to {size}"
        if "MaximumBatchingWindowInSeconds" in props:
            window = self.check.seconds(
                number(props["MaximumBatchingWindowInSeconds"]),
                child(props_at, "MaximumBatchingWindowInSeconds"),
                positive=False,
                hi=300,
            )
            fields["batch_window"] = window
            used["MaximumBatchingWindowInSeconds"] = f"gathers a batch for up to {window:g} s"
        if props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]:
            used["FunctionResponseTypes"] = "batchItemFailures retry only the failed messages"
        if props.get("Enabled") in (False, "false"):
            self.check.fail(
                child(props_at, "Enabled"),
                "disabled event sources are not supported; remove the event",
            )
        fields.update(self.queues.get(name, ("", {}))[1])
        self._done(props_at, props, used)
        self.record(at, "run", f"consumes queue {name}")
        return build(self.check, QueueTrigger, at, **fields)

    def _sns(self, kind: str, props: dict[str, Any], at: str) -> Trigger:
        props_at = child(at, "Properties")
        if "Topic" not in props:
            self.check.fail(props_at, "an SNS event needs 'Topic' (e.g. !Ref MyTopic)")
        name = self._arn_name(props["Topic"], child(props_at, "Topic"), "sns")
        fields: dict[str, Any] = {"name": name}
        used = {"Topic": f"topic {name}"}
        if "FilterPolicy" in props:
            fields["filter_policy"] = self.check.mapping(
                props["FilterPolicy"], child(props_at, "FilterPolicy")
            )
            used["FilterPolicy"] = "filters on message attributes"
        self._done(props_at, props, used)
        self.record(at, "run", f"subscribes to topic {name}")
        return build(self.check, TopicTrigger, at, **fields)


def number(value: Any) -> Any:
    """Numbers from parameters arrive as text: `"128"` -> 128, `"2.5"` -> 2.5."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


_AUTH_IGNORED = {
    "EnableIamAuthorizer": "AWS_IAM routes are reported one by one",
    "AddDefaultAuthorizerToCorsPreflight": "preflights are answered by the gateway's CORS policy",
    "AddApiKeyRequiredToCorsPreflight": "preflights are answered by the gateway's CORS policy",
    "InvokeRole": "no IAM: authorizers are invoked directly",
    "UsagePlan": "no usage plans on SAM APIs",
}
_EVENT_IGNORED = {
    "RestApiId": "one gateway serves every API",
    "ApiId": "one gateway serves every API",
    "Name": "informational",
    "Description": "informational",
    "RequestModel": "requests are not validated",
    "RequestParameters": "requests are not validated",
    "TimeoutInMillis": "the function's Timeout applies",
    "RouteSettings": "gateway.rate_limit in lamina.yaml is the equivalent",
    "DeadLetterConfig": "failed deliveries go to Lamina's dead-letter queue (lamina dlq)",
    "RetryPolicy": "Lamina's retry policy applies",
    "FilterCriteria": "every message is delivered",
    "ScalingConfig": "the function's instance limits apply",
    "FlexibleTimeWindow": "schedules fire on time",
}
