"""SNS subscription filter policies as tables: (policy, attributes) -> accepted or not.

Most cases are the examples of the "Amazon SNS subscription filter policies" pages (string,
numeric and key matching, AND/OR logic).
"""

from __future__ import annotations

from typing import Any

import pytest

from lamina.events.filter_policy import compile_policy, matches, validate_policy


def s(value: str) -> dict[str, str]:
    return {"Type": "String", "Value": value}


def n(value: str) -> dict[str, str]:
    return {"Type": "Number", "Value": value}


def arr(value: str) -> dict[str, str]:
    return {"Type": "String.Array", "Value": value}


# The example message of the SNS docs' filter policy pages.
ORDER = {
    "customer_interests": arr('["soccer", "rugby", "hockey"]'),
    "store": s("example_corp"),
    "event": s("order_placed"),
    "price_usd": n("210.75"),
}

CASES = [
    # --- exact strings and OR within a key ---
    pytest.param(
        {"customer_interests": ["rugby", "tennis"]},
        {"customer_interests": s("rugby")},
        True,
        id="an exact string in the list matches",
    ),
    pytest.param(
        {"customer_interests": ["rugby", "tennis"]},
        {"customer_interests": s("baseball")},
        False,
        id="a string not in the list does not match",
    ),
    pytest.param(
        {"customer_interests": ["rugby", "tennis"]},
        {"customer_interests": arr('["rugby", "tennis"]')},
        True,
        id="a String.Array matches when an element matches",
    ),
    pytest.param(
        {"customer_interests": ["rugby"]},
        {"customer_interests": arr('["baseball"]')},
        False,
        id="a String.Array with no listed element does not match",
    ),
    pytest.param(
        {"store": ["example_corp"]},
        {"store": "example_corp"},
        True,
        id="plain Python attribute values are accepted too",
    ),
    pytest.param(
        {"store": ["Example_Corp"]},
        {"store": s("example_corp")},
        False,
        id="exact string matching is case-sensitive",
    ),
    pytest.param(
        {"price": ["100"]},
        {"price": n("100")},
        False,
        id="a string condition does not match a Number attribute",
    ),
    # --- prefix, suffix, equals-ignore-case ---
    pytest.param(
        {"customer_interests": [{"prefix": "bas"}]},
        {"customer_interests": s("baseball")},
        True,
        id="prefix bas matches baseball",
    ),
    pytest.param(
        {"customer_interests": [{"prefix": "bas"}]},
        {"customer_interests": s("rugby")},
        False,
        id="prefix bas does not match rugby",
    ),
    pytest.param(
        {"customer_interests": [{"suffix": "ball"}]},
        {"customer_interests": s("baseball")},
        True,
        id="suffix ball matches baseball",
    ),
    pytest.param(
        {"event": [{"equals-ignore-case": "ORDER_PLACED"}]},
        {"event": s("order_placed")},
        True,
        id="equals-ignore-case ignores case",
    ),
    # --- anything-but ---
    pytest.param(
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": s("baseball")},
        True,
        id="anything-but a list matches a value outside it",
    ),
    pytest.param(
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": s("rugby")},
        False,
        id="anything-but a list rejects a listed value",
    ),
    pytest.param(
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": arr('["rugby", "baseball"]')},
        True,
        id="anything-but matches an array holding one unlisted value",
    ),
    pytest.param(
        {"customer_interests": [{"anything-but": "rugby"}]},
        {"customer_interests": s("rugby")},
        False,
        id="anything-but a single string rejects that string",
    ),
    pytest.param(
        {"customer_interests": [{"anything-but": "rugby"}]},
        {},
        False,
        id="anything-but needs the attribute to be present",
    ),
    pytest.param(
        {"customer_interests": [{"anything-but": "rugby"}], "store": [{"exists": True}]},
        {"store": s("x")},
        False,
        id="anything-but does not match an absent attribute",
    ),
    pytest.param(
        {"customer_interests": [{"anything-but": "rugby"}, {"exists": False}]},
        {"store": s("x")},
        True,
        id="anything-but combined with exists false also accepts absence",
    ),
    pytest.param(
        {"event": [{"anything-but": {"prefix": "order-"}}]},
        {"event": s("data-entry")},
        True,
        id="anything-but prefix matches a value without the prefix",
    ),
    pytest.param(
        {"event": [{"anything-but": {"prefix": "order-"}}]},
        {"event": s("order-cancelled")},
        False,
        id="anything-but prefix rejects a value with the prefix",
    ),
    pytest.param(
        {"event": [{"anything-but": {"suffix": "-test"}}]},
        {"event": s("order-test")},
        False,
        id="anything-but suffix rejects a value with the suffix",
    ),
    pytest.param(
        {"price": [{"anything-but": [100, 500]}]},
        {"price": n("101")},
        True,
        id="numeric anything-but matches 101",
    ),
    pytest.param(
        {"price": [{"anything-but": [100, 500]}]},
        {"price": n("100.1")},
        True,
        id="numeric anything-but matches 100.1",
    ),
    pytest.param(
        {"price": [{"anything-but": [100, 500]}]},
        {"price": n("100")},
        False,
        id="numeric anything-but rejects 100",
    ),
    pytest.param(
        {"price": [{"anything-but": [100, 500]}]},
        {"price": {"Type": "Number.Array", "Value": "[100, 50]"}},
        True,
        id="numeric anything-but matches an array holding 50",
    ),
    # --- numbers ---
    pytest.param(
        {"price_usd": [301.5]},
        {"price_usd": n("3.015e2")},
        True,
        id="an exact number matches the same value in exponent form",
    ),
    pytest.param(
        {"price_usd": [{"numeric": ["=", 301.5]}]},
        {"price_usd": n("301.5")},
        True,
        id="numeric equals matches an equal value",
    ),
    pytest.param(
        {"price_usd": [{"numeric": ["=", 301.5]}]},
        {"price_usd": 301.5},
        True,
        id="numeric equals matches a plain Python float",
    ),
    pytest.param(
        {"price_usd": [{"numeric": ["<", 0]}]},
        {"price_usd": n("-1")},
        True,
        id="numeric below zero matches a negative value",
    ),
    pytest.param(
        {"price_usd": [{"numeric": ["<", 0]}]},
        {"price_usd": n("0")},
        False,
        id="numeric below zero rejects zero",
    ),
    pytest.param(
        {"price_usd": [{"numeric": [">", 0, "<=", 150]}]},
        {"price_usd": n("150")},
        True,
        id="a range up to and including 150 matches 150",
    ),
    pytest.param(
        {"price_usd": [{"numeric": [">", 0, "<=", 150]}]},
        {"price_usd": n("0")},
        False,
        id="a range above zero rejects zero",
    ),
    pytest.param(
        {"price_usd": [{"numeric": [">", 0, "<=", 150]}]},
        {"price_usd": n("210.75")},
        False,
        id="a range up to 150 rejects 210.75",
    ),
    pytest.param(
        {"price_usd": [{"numeric": [">=", 100]}]},
        {"price_usd": s("210.75")},
        False,
        id="numeric conditions ignore String attributes",
    ),
    pytest.param(
        {"price_usd": [{"numeric": [">=", 100]}]},
        {"price_usd": n("not a number")},
        False,
        id="a Number attribute that is not a number matches nothing",
    ),
    # --- exists ---
    pytest.param(
        {"store": [{"exists": True}]},
        {"store": s("fans")},
        True,
        id="exists true matches a present attribute",
    ),
    pytest.param(
        {"store": [{"exists": True}]},
        {"event": s("x")},
        False,
        id="exists true rejects an absent attribute",
    ),
    pytest.param(
        {"store": [{"exists": False}]},
        {"event": s("x")},
        True,
        id="exists false matches an absent attribute",
    ),
    pytest.param(
        {"store": [{"exists": False}]},
        {"store": s("fans")},
        False,
        id="exists false rejects a present attribute",
    ),
    pytest.param(
        {"store": [{"exists": False}]},
        {},
        False,
        id="exists false does not match a message without attributes",
    ),
    pytest.param(
        {"blob": [{"exists": True}]},
        {"blob": {"Type": "Binary", "Value": "AAE="}},
        True,
        id="a Binary attribute counts for exists",
    ),
    pytest.param(
        {"blob": ["AAE="]},
        {"blob": {"Type": "Binary", "Value": "AAE="}},
        False,
        id="a Binary attribute matches no value condition",
    ),
    # --- AND across keys, whole policies ---
    pytest.param(
        {"store": ["example_corp"], "event": ["order_placed"]},
        ORDER,
        True,
        id="every key matching accepts the message",
    ),
    pytest.param(
        {"store": ["example_corp"], "event": ["order_cancelled"]},
        ORDER,
        False,
        id="one key failing rejects the message",
    ),
    pytest.param(
        {"store": ["example_corp"], "encrypted": ["yes", {"exists": True}]},
        ORDER,
        False,
        id="a key missing from the message rejects it",
    ),
    pytest.param(
        {
            "customer_interests": ["rugby", "football", "baseball"],
            "store": [{"anything-but": "example_corp"}, "other_corp"],
            "price_usd": [{"numeric": [">=", 100]}],
        },
        ORDER,
        False,
        id="the docs example rejects store example_corp",
    ),
    pytest.param(
        {
            "customer_interests": [{"prefix": "hock"}],
            "event": [{"anything-but": ["order_cancelled"]}],
            "price_usd": [{"numeric": [">", 200, "<", 300]}],
        },
        ORDER,
        True,
        id="prefix, anything-but and a range together accept the order",
    ),
    pytest.param({}, {}, True, id="an empty policy accepts everything"),
    pytest.param(
        {"unrelated": [{"exists": False}]},
        ORDER,
        True,
        id="attributes the policy does not name are ignored",
    ),
]


@pytest.mark.parametrize(("policy", "attributes", "expected"), CASES)
def test_matches(policy: dict[str, Any], attributes: dict[str, Any], expected: bool) -> None:
    assert matches(policy, attributes) is expected


def test_a_compiled_policy_can_be_reused() -> None:
    policy = compile_policy({"price_usd": [{"numeric": [">", 200]}]})
    assert [policy.matches({"price_usd": n(v)}) for v in ("100", "250")] == [False, True]


INVALID = [
    pytest.param(
        ["store"],
        r"filter policy: expected a JSON object, got \[\"store\"\]",
        id="a list instead of an object",
    ),
    pytest.param(
        {"store": "example_corp"},
        r"'store': expected a non-empty list of conditions",
        id="a bare string instead of a list",
    ),
    pytest.param({"store": []}, r"'store': expected a non-empty list", id="an empty list"),
    pytest.param(
        {"store": {"prefix": "x"}},
        r"'store': nested policies .* not supported",
        id="a nested object (MessageBody scope)",
    ),
    pytest.param(
        {"$or": [{"a": ["x"]}]},
        r"'\$or': operator is not supported",
        id="the $or operator is not supported",
    ),
    pytest.param(
        {"store": [True]},
        r"'store': expected a string, a number or an object",
        id="a boolean condition",
    ),
    pytest.param({"store": [None]}, r"'store': expected a string", id="a null condition"),
    pytest.param(
        {"store": [{"prefix": "a", "suffix": "b"}]},
        r"'store': expected a string",
        id="two operators in one object",
    ),
    pytest.param(
        {"store": [{"prefx": "a"}]},
        r"'store': 'prefx': unknown operator; expected one of",
        id="an unknown operator is named",
    ),
    pytest.param(
        {"store": [{"prefix": ""}]}, r"'prefix': expected a non-empty string", id="an empty prefix"
    ),
    pytest.param(
        {"store": [{"prefix": 1}]},
        r"'prefix': expected a non-empty string, got 1",
        id="a numeric prefix",
    ),
    pytest.param(
        {"store": [{"exists": "yes"}]},
        r"'exists': expected true or false, got \"yes\"",
        id="exists with a string",
    ),
    pytest.param(
        {"store": [{"anything-but": []}]},
        r"'anything-but': expected a string",
        id="anything-but with an empty list",
    ),
    pytest.param(
        {"store": [{"anything-but": [True]}]},
        r"'anything-but': expected a string",
        id="anything-but with a boolean",
    ),
    pytest.param(
        {"store": [{"anything-but": {"exists": True}}]},
        r"'anything-but': expected \{\"prefix\": \.\.\.\}",
        id="anything-but with exists",
    ),
    pytest.param(
        {"p": [{"numeric": [">", "1"]}]},
        r"'numeric': bounds must be numbers",
        id="a numeric bound given as a string",
    ),
    pytest.param(
        {"p": [{"numeric": ["!=", 1]}]},
        r"operator '!=': expected =, <, <=, > or >=",
        id="an unknown comparison",
    ),
    pytest.param(
        {"p": [{"numeric": [">", 1, "<"]}]},
        r"'numeric': expected \[op, number\]",
        id="a numeric list of the wrong length",
    ),
    pytest.param(
        {"p": [{"numeric": ["<", 10, ">", 1]}]},
        r"'numeric': expected \[op, number\]",
        id="a range must give the lower bound first",
    ),
    pytest.param(
        {"p": [{"numeric": ["=", 1, "<", 5]}]},
        r"'numeric': expected",
        id="equals cannot start a range",
    ),
    pytest.param(
        {"p": [{"numeric": [">", 10, "<", 1]}]},
        r"lower bound 10 is above upper bound 1",
        id="an empty range",
    ),
]


@pytest.mark.parametrize(("policy", "message"), INVALID)
def test_invalid_policies_say_what_is_wrong(policy: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_policy(policy)
    with pytest.raises(ValueError, match=message):
        matches(policy, {"store": s("x")})


def test_a_valid_policy_validates() -> None:
    validate_policy(
        {
            "store": ["example_corp", {"prefix": "ex"}, {"anything-but": {"prefix": "x"}}],
            "price_usd": [{"numeric": [">=", 0, "<", 1e6]}, 42],
            "flag": [{"exists": False}],
        }
    )
