"""SNS subscription filter policies on message attributes. Pure.

A policy maps attribute names to lists of conditions. Following "Amazon SNS subscription
filter policies": a message is accepted when every name in the policy (AND across keys)
has at least one condition in its list that matches the attribute (OR within a key);
attributes the policy does not name are ignored. Conditions:

    "red"                           exact string (String attributes, String.Array elements)
    301.5                           exact number (Number attributes; 3.015e2 matches too)
    {"prefix": "bas"}               string starts with
    {"suffix": "ball"}              string ends with
    {"equals-ignore-case": "RED"}   case-insensitive string equality
    {"anything-but": ...}           a string, a number, a list of them, or {"prefix": "x"} /
                                    {"suffix": "x"}: the attribute is present and differs
    {"numeric": [">", 0, "<=", 150]} one comparison, or a lower then an upper bound; "=" alone
    {"exists": true|false}          the attribute is present / absent

Arrays: a String.Array (or Number array) attribute matches when any element matches, as the
SNS pages say for exact matching and as the numeric page says for anything-but ("[100, 50]"
matches anything-but [100, 500] "because it contains a value that isn't 100 or 500"). One
newer revision of the string page says anything-but needs no element listed; we follow the
any-element rule, which EventBridge patterns also use.
`"exists": false` "only matches if at least one attribute is present": a message without
attributes matches no non-empty policy. An empty policy accepts everything.
Not supported (validate_policy rejects them): `$or`, `cidr`, nested (MessageBody) policies.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["FilterPolicy", "compile_policy", "matches", "validate_policy"]

_STRING_OPS = ("prefix", "suffix", "equals-ignore-case")
_OPERATORS = (*_STRING_OPS, "anything-but", "numeric", "exists")
_LOWER = {">": operator.gt, ">=": operator.ge}
_UPPER = {"<": operator.lt, "<=": operator.le}
_COMPARE = {**_LOWER, **_UPPER, "=": operator.eq}

# A value pulled from an attribute: a str, or a float for numbers.
_Value = str | float
_Condition = Callable[[list[_Value] | None], bool]  # None: the attribute is absent


@dataclass(frozen=True, slots=True)
class FilterPolicy:
    """A validated policy; `matches` is cheap, so a subscription can keep one around."""

    conditions: Mapping[str, tuple[_Condition, ...]]

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        """True when every key has a matching condition; see the module docstring."""
        if not self.conditions:
            return True
        if not attributes:
            return False
        for name, options in self.conditions.items():
            values = _values(attributes[name]) if name in attributes else None
            if not any(condition(values) for condition in options):
                return False
        return True


def matches(policy: Mapping[str, Any], attributes: Mapping[str, Any]) -> bool:
    """Whether a message with `attributes` passes `policy`; ValueError if `policy` is invalid.

    `attributes` values are either SNS-shaped (`{"Type": "Number", "Value": "210.75"}`,
    String.Array values are JSON text) or plain Python: str, int/float, bytes, or a list.
    """
    return compile_policy(policy).matches(attributes)


def validate_policy(policy: Any) -> None:
    """Raise ValueError saying what is wrong with `policy`, or return None if it is valid."""
    compile_policy(policy)


def compile_policy(policy: Any) -> FilterPolicy:
    """Check `policy` and turn it into a `FilterPolicy`."""
    if not isinstance(policy, Mapping):
        raise ValueError(f"filter policy: expected a JSON object, got {_show(policy)}")
    compiled: dict[str, tuple[_Condition, ...]] = {}
    for name, options in policy.items():
        if not isinstance(name, str):
            raise ValueError(f"filter policy: key {name!r}: expected a string")
        if name.startswith("$"):
            raise ValueError(f"filter policy: {name!r}: operator is not supported by Lamina")
        if isinstance(options, Mapping):
            raise ValueError(
                f"filter policy: {name!r}: nested policies (MessageBody scope) are not "
                "supported; expected a list of conditions"
            )
        if not isinstance(options, list) or not options:
            raise ValueError(
                f"filter policy: {name!r}: expected a non-empty list of conditions, "
                f"got {_show(options)}"
            )
        compiled[name] = tuple(_condition(name, option) for option in options)
    return FilterPolicy(compiled)


# --- conditions ---------------------------------------------------------------------------


def _condition(name: str, option: Any) -> _Condition:
    where = f"filter policy: {name!r}"
    if isinstance(option, str):
        return _present(lambda v: v == option)
    if _is_number(option):
        number = float(option)
        return _present(lambda v: isinstance(v, float) and v == number)
    if not isinstance(option, Mapping) or len(option) != 1:
        raise ValueError(
            f"{where}: expected a string, a number or an object with one operator "
            f"({', '.join(_OPERATORS)}), got {_show(option)}"
        )
    ((op, arg),) = option.items()
    where = f"{where}: {op!r}"
    if op in _STRING_OPS:
        return _present(_string_test(where, op, arg))
    if op == "anything-but":
        return _anything_but(where, arg)
    if op == "numeric":
        return _present(_numeric(where, arg))
    if op == "exists":
        if not isinstance(arg, bool):
            raise ValueError(f"{where}: expected true or false, got {_show(arg)}")
        return (lambda v: v is not None) if arg else (lambda v: v is None)
    raise ValueError(f"{where}: unknown operator; expected one of {', '.join(_OPERATORS)}")


def _present(test: Callable[[_Value], bool]) -> _Condition:
    """A condition that holds when the attribute is present and any of its values passes."""
    return lambda values: values is not None and any(test(v) for v in values)


def _string_test(where: str, op: str, arg: Any) -> Callable[[_Value], bool]:
    if not isinstance(arg, str) or (op != "equals-ignore-case" and not arg):
        raise ValueError(f"{where}: expected a non-empty string, got {_show(arg)}")
    if op == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(arg)
    if op == "suffix":
        return lambda v: isinstance(v, str) and v.endswith(arg)
    folded = arg.casefold()
    return lambda v: isinstance(v, str) and v.casefold() == folded


def _anything_but(where: str, arg: Any) -> _Condition:
    if isinstance(arg, Mapping):
        if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix"):
            raise ValueError(f'{where}: expected {{"prefix": ...}} or {{"suffix": ...}}')
        ((op, text),) = arg.items()
        test = _string_test(f"{where}: {op!r}", op, text)
        return _present(lambda v: isinstance(v, str) and not test(v))
    listed = arg if isinstance(arg, list) else [arg]
    if not listed or not all(isinstance(x, str) or _is_number(x) for x in listed):
        raise ValueError(
            f"{where}: expected a string, a number, a non-empty list of them, or a prefix "
            f"or suffix object, got {_show(arg)}"
        )
    excluded = {float(x) if _is_number(x) else x for x in listed}
    return _present(lambda v: v not in excluded)


def _numeric(where: str, arg: Any) -> Callable[[_Value], bool]:
    shape = 'expected [op, number] or [">"|">=", low, "<"|"<=", high]'
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise ValueError(f"{where}: {shape}, got {_show(arg)}")
    ops, bounds = arg[0::2], arg[1::2]
    if not all(_is_number(b) for b in bounds):
        raise ValueError(f"{where}: bounds must be numbers, got {_show(arg)}")
    if len(arg) == 2:
        if ops[0] not in _COMPARE:
            raise ValueError(f"{where}: operator {ops[0]!r}: expected =, <, <=, > or >=")
        compare, bound = _COMPARE[ops[0]], float(bounds[0])
        return lambda v: isinstance(v, float) and compare(v, bound)
    if ops[0] not in _LOWER or ops[1] not in _UPPER:
        raise ValueError(f"{where}: {shape}, got {_show(arg)}")
    low, high = float(bounds[0]), float(bounds[1])
    if low > high:
        raise ValueError(f"{where}: lower bound {bounds[0]} is above upper bound {bounds[1]}")
    above, below = _LOWER[ops[0]], _UPPER[ops[1]]
    return lambda v: isinstance(v, float) and above(v, low) and below(v, high)


# --- attribute values ---------------------------------------------------------------------


def _values(attribute: Any) -> list[_Value]:
    """The comparable values of one attribute: strings, numbers as floats, array elements."""
    if isinstance(attribute, Mapping) and "Type" in attribute and "Value" in attribute:
        return _sns_values(str(attribute["Type"]), attribute["Value"])
    return _plain_values(attribute)


def _sns_values(kind: str, value: Any) -> list[_Value]:
    if kind.startswith("Number") and not kind.endswith(".Array"):
        return _plain_values(_to_number(value))
    if kind.endswith(".Array"):
        try:
            return _plain_values(json.loads(value) if isinstance(value, str) else value)
        except ValueError:
            return []
    if kind.startswith("String"):
        return _plain_values(str(value))
    return []  # Binary attributes take part only in "exists"


def _plain_values(value: Any) -> list[_Value]:
    if isinstance(value, str):
        return [value]
    if _is_number(value):
        return [float(value)]
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [v for item in value if not isinstance(item, list) for v in _plain_values(item)]
    return []


def _to_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
