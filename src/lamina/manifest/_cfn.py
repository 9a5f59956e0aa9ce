"""CloudFormation YAML and intrinsic functions, as much as running a SAM template needs.

`load_cfn_yaml` reads a template with the short-form tags (`!Ref`, `!GetAtt`, `!Sub`, ...)
into plain data in the long form (`{"Ref": x}`, `{"Fn::GetAtt": [r, a]}`), keeping the line
of every key path like the `lamina.yaml` loader. `Resolver` evaluates intrinsic functions
against parameters, conditions and what each resource is called inside Lamina.
`dump_cfn_yaml` writes a template, with `Ref`, `GetAtt` and `Sub` values as short-form tags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from lamina.manifest._check import Checker, describe
from lamina.manifest._yamlpos import Lines, _Walker, child, load_yaml

__all__ = ["NO_VALUE", "GetAtt", "Ref", "Resolver", "Sub", "dump_cfn_yaml", "load_cfn_yaml"]

REGION = "us-east-1"  # what `AWS::Region` and ARNs say; Lamina runs in no AWS region
ACCOUNT = "000000000000"  # what `AWS::AccountId` and ARNs say (the Invoke API's account too)
NO_VALUE: Any = object()  # `!Ref AWS::NoValue`: the property is removed
_SUB = re.compile(r"\$\{([^}]*)\}")


class _CfnWalker(_Walker):
    """The manifest walker, plus `!Tag value` nodes turned into `{"Fn::Tag": value}`."""

    def value(self, node: yaml.Node, path: str) -> Any:
        tag = node.tag or ""
        if not tag.startswith("!"):
            return super().value(node, path)
        name = tag[1:]
        if isinstance(node, yaml.ScalarNode):
            inner: Any = str(node.value)
            if name == "GetAtt":  # `!GetAtt Queue.Arn` is the list form split at the first dot
                inner = inner.split(".", 1)
        else:
            inner = super().value(node, path)
        return {
            "Ref" if name == "Ref" else "Condition" if name == "Condition" else f"Fn::{name}": inner
        }


def load_cfn_yaml(text: str, file: str) -> tuple[Any, Lines]:
    """Return (data, lines) of a CloudFormation template; errors name the file and line."""
    return load_yaml(text, file, _CfnWalker)


class Ref(str):
    """`!Ref Name` when dumped: a parameter or the resource's physical id."""


class GetAtt(str):
    """`!GetAtt Resource.Attribute` when dumped."""


class Sub(str):
    """`!Sub "text with ${Name}"` when dumped."""


_TAGS = ("!Ref", "!GetAtt", "!Sub")


class _CfnDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a value used twice is written twice, never as an anchor and alias

    def choose_scalar_style(self) -> str:
        """`!Ref Queue` rather than `!Ref 'Queue'`: a tagged scalar is plain when it can be."""
        event = self.event
        if isinstance(event, yaml.ScalarEvent) and event.tag in _TAGS and not event.style:
            analysis = self.analysis or self.analyze_scalar(event.value)
            self.analysis = analysis
            if analysis.allow_block_plain and not analysis.empty and not analysis.multiline:
                return ""
        return str(super().choose_scalar_style())


def _tagged(tag: str) -> Callable[[yaml.SafeDumper, str], yaml.ScalarNode]:
    def represent(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar(tag, str(value))

    return represent


for _kind, _tag in ((Ref, "!Ref"), (GetAtt, "!GetAtt"), (Sub, "!Sub")):
    _CfnDumper.add_representer(_kind, _tagged(_tag))


def dump_cfn_yaml(data: Mapping[str, Any]) -> str:
    """The template `data` as YAML, keys in insertion order (so the same data gives the same
    text); `Ref`, `GetAtt` and `Sub` strings become short-form tags."""
    return yaml.dump(
        data, Dumper=_CfnDumper, sort_keys=False, allow_unicode=True, width=100, indent=2
    )


class Resolver:
    """Evaluates intrinsic functions. `ref(name)` and `get_att(name, attr)` answer for
    resources (None: not a resource this resolver knows)."""

    def __init__(
        self,
        check: Checker,
        parameters: Mapping[str, Any],
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
        stack: str,
    ) -> None:
        self._check = check
        self.parameters = dict(parameters)
        self.conditions: dict[str, bool] = {}  # evaluated so far
        self.raw_conditions: dict[str, Any] = {}  # `Conditions:` as written, evaluated on use
        self.mappings: dict[str, Any] = {}  # `Mappings:` as written, read by Fn::FindInMap
        self.pseudo_used: dict[str, Any] = {}  # pseudo parameters referenced, with their values
        self._evaluating: set[str] = set()
        self._ref = ref
        self._get_att = get_att
        self._pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": stack,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/lamina",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }

    def resolve(self, value: Any, path: str) -> Any:
        """`value` with every intrinsic function evaluated; `AWS::NoValue` entries removed."""
        if isinstance(value, list):
            items = [self.resolve(v, child(path, i)) for i, v in enumerate(value)]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                return self._function(key, arg, child(path, key))
        out = {k: self.resolve(v, child(path, k)) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def condition(self, name: Any, path: str) -> bool:
        """The value of condition `name`, evaluated on first use."""
        if not isinstance(name, str) or name not in self.raw_conditions:
            known = ", ".join(sorted(self.raw_conditions)) or "none"
            self._check.fail(path, f"unknown condition {describe(name)} (defined: {known})")
        if name not in self.conditions:
            at = child("Conditions", name)
            if name in self._evaluating:
                self._check.fail(at, f"condition {name!r} refers to itself")
            self._evaluating.add(name)
            value = self.resolve(self.raw_conditions[name], at)
            self._evaluating.discard(name)
            if not isinstance(value, bool):
                self._check.fail(
                    at, f"expected a condition (Fn::Equals, ...), got {describe(value)}"
                )
            self.conditions[name] = value
        return self.conditions[name]

    def _function(self, key: str, arg: Any, path: str) -> Any:
        if key == "Ref":
            return self._reference(arg, path)
        if key == "Condition":
            return self.condition(arg, path)
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                arg = arg.split(".", 1)
            arg = self.resolve(arg, path)
            if not (
                isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg)
            ):
                self._check.fail(path, f"expected [Resource, Attribute], got {describe(arg)}")
            return self._attribute(arg[0], arg[1], path)
        if key == "Fn::Sub":
            return self._sub(arg, path)
        if key == "Fn::FindInMap":
            return self._find_in_map(arg, path)
        if key == "Fn::Join":
            arg = self.resolve(arg, path)
            if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
                self._check.fail(path, f"expected [delimiter, [values...]], got {describe(arg)}")
            return str(arg[0]).join(self._text(v, path) for v in arg[1])
        if key == "Fn::Select":
            arg = self.resolve(arg, path)
            if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
                self._check.fail(path, f"expected [index, [values...]], got {describe(arg)}")
            index = int(arg[0])
            if not 0 <= index < len(arg[1]):
                self._check.fail(path, f"index {index} is outside the {len(arg[1])} values")
            return arg[1][index]
        if key == "Fn::Split":
            arg = self.resolve(arg, path)
            if not (isinstance(arg, list) and len(arg) == 2):
                self._check.fail(path, f"expected [delimiter, text], got {describe(arg)}")
            return self._text(arg[1], path).split(str(arg[0]))
        if key == "Fn::If":
            if not (isinstance(arg, list) and len(arg) == 3):
                self._check.fail(
                    path,
                    f"expected [Condition, value if true, value if false], got {describe(arg)}",
                )
            chosen = arg[1] if self.condition(arg[0], child(path, 0)) else arg[2]
            return self.resolve(chosen, path)
        if key == "Fn::Equals":
            arg = self.resolve(arg, path)
            if not (isinstance(arg, list) and len(arg) == 2):
                self._check.fail(path, f"expected [value, value], got {describe(arg)}")
            return str(arg[0]) == str(arg[1])
        if key in ("Fn::And", "Fn::Or", "Fn::Not"):
            values = self.resolve(arg, path)
            if not isinstance(values, list) or not all(isinstance(v, bool) for v in values):
                self._check.fail(path, f"expected a list of conditions, got {describe(values)}")
            if key == "Fn::Not":
                return not values[0]
            return all(values) if key == "Fn::And" else any(values)
        self._check.fail(
            path,
            f"intrinsic function {key} is not supported (supported: Ref, Fn::GetAtt, Fn::Sub, "
            "Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, Fn::If, Fn::Equals, Fn::And, "
            "Fn::Or, Fn::Not)",
        )

    def _reference(self, name: Any, path: str) -> Any:
        if not isinstance(name, str):
            self._check.fail(path, f"expected a parameter or resource name, got {describe(name)}")
        if name in self.parameters:
            return self.parameters[name]
        if name in self._pseudo:
            self.pseudo_used.setdefault(name, self._pseudo[name])
            return self._pseudo[name]
        found = self._ref(name)
        if found is None:
            self._check.fail(path, f"Ref to {name!r}: no parameter or resource of that name")
        return found

    def _find_in_map(self, arg: Any, path: str) -> Any:
        """`[MapName, TopLevelKey, SecondLevelKey]`, each possibly an intrinsic function."""
        keys = self.resolve(arg, path)
        if not (isinstance(keys, list) and len(keys) == 3):
            self._check.fail(
                path, f"expected [MapName, TopLevelKey, SecondLevelKey], got {describe(keys)}"
            )
        found: Any = self.mappings
        where = "Mappings"
        for depth, key in enumerate(keys):
            if not isinstance(key, str | int) or isinstance(key, bool):
                self._check.fail(child(path, depth), f"expected a key name, got {describe(key)}")
            if not isinstance(found, dict) or str(key) not in found:
                known = ", ".join(str(k) for k in found) if isinstance(found, dict) else ""
                self._check.fail(path, f"{where} has no key {str(key)!r} (keys: {known or 'none'})")
            found = found[str(key)]
            where = child(where, str(key))
        return found

    def _attribute(self, name: str, attr: str, path: str) -> Any:
        found = self._get_att(name, attr)
        if found is None:
            self._check.fail(path, f"GetAtt {name}.{attr}: no such resource or attribute")
        return found

    def _sub(self, arg: Any, path: str) -> str:
        variables: dict[str, Any] = {}
        if isinstance(arg, list):
            if len(arg) != 2 or not isinstance(arg[1], dict):
                self._check.fail(
                    path, f"expected a string or [string, {{variables}}], got {describe(arg)}"
                )
            arg, variables = arg[0], self.resolve(arg[1], path)
        if not isinstance(arg, str):
            self._check.fail(path, f"expected a string, got {describe(arg)}")

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return self._text(variables[name], path)
            if "." in name and name.split(".", 1)[0] not in self.parameters:
                resource, attr = name.split(".", 1)
                return self._text(self._attribute(resource, attr, path), path)
            return self._text(self._reference(name, path), path)

        return _SUB.sub(one, arg)

    def _text(self, value: Any, path: str) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, list):
            return ",".join(self._text(v, path) for v in value)
        self._check.fail(path, f"expected a string, got {describe(value)}")
