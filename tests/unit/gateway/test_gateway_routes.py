"""Router precedence, as AWS "Working with routes for HTTP APIs" describes it."""

from __future__ import annotations

import pytest

from lamina.gateway.routes import Router
from lamina.manifest.routekey import RouteKey


def router(*keys: str) -> Router[str]:
    """A router whose target for each route is its own route key text."""
    return Router((RouteKey.parse(k), k) for k in keys)


# The example table from the AWS docs, plus $default.
AWS_EXAMPLE = router(
    "GET /pets/dog/1", "GET /pets/dog/{id}", "GET /pets/{proxy+}", "ANY /{proxy+}", "$default"
)


@pytest.mark.parametrize(
    ("method", "path", "expected", "params"),
    [
        pytest.param(
            "GET", "/pets/dog/1", "GET /pets/dog/1", {}, id="a static route fully matches"
        ),
        pytest.param(
            "GET",
            "/pets/dog/2",
            "GET /pets/dog/{id}",
            {"id": "2"},
            id="a param route fully matches",
        ),
        pytest.param(
            "GET",
            "/pets/cat/1",
            "GET /pets/{proxy+}",
            {"proxy": "cat/1"},
            id="no full match falls to the greedy route with the method",
        ),
        pytest.param(
            "POST",
            "/test/5",
            "ANY /{proxy+}",
            {"proxy": "test/5"},
            id="ANY greedy catches methods without a route",
        ),
        pytest.param(
            "POST",
            "/pets/dog/1",
            "ANY /{proxy+}",
            {"proxy": "pets/dog/1"},
            id="a path match with the wrong method is not a match",
        ),
        pytest.param(
            "GET", "/", "$default", {}, id="greedy does not match the root so default does"
        ),
    ],
)
def test_aws_documented_example(
    method: str, path: str, expected: str, params: dict[str, str]
) -> None:
    match = AWS_EXAMPLE.match(method, path)
    assert match is not None
    assert match.target == expected
    assert str(match.route) == expected
    assert match.path_params == params


@pytest.mark.parametrize(
    ("keys", "method", "path", "expected", "params"),
    [
        pytest.param(
            ("GET /users/{id}", "GET /users/me"),
            "GET",
            "/users/me",
            "GET /users/me",
            {},
            id="literal beats param at the same position",
        ),
        pytest.param(
            ("GET /users/{id}", "GET /users/{proxy+}"),
            "GET",
            "/users/7",
            "GET /users/{id}",
            {"id": "7"},
            id="param beats greedy for one segment",
        ),
        pytest.param(
            ("GET /users/{id}", "GET /users/{proxy+}"),
            "GET",
            "/users/7/posts",
            "GET /users/{proxy+}",
            {"proxy": "7/posts"},
            id="greedy takes several segments",
        ),
        pytest.param(
            ("GET /a/{x}/c", "GET /{y}/b/c"),
            "GET",
            "/a/b/c",
            "GET /a/{x}/c",
            {"x": "b"},
            id="the earlier literal position decides",
        ),
        pytest.param(
            ("GET /a/{proxy+}", "GET /{x}/b"),
            "GET",
            "/a/b",
            "GET /a/{proxy+}",
            {"proxy": "b"},
            id="a literal first segment beats a param first segment even before a greedy",
        ),
        pytest.param(
            ("ANY /pets", "GET /pets"),
            "GET",
            "/pets",
            "GET /pets",
            {},
            id="a specific method beats ANY on a literal path",
        ),
        pytest.param(
            ("ANY /pets", "GET /pets"),
            "DELETE",
            "/pets",
            "ANY /pets",
            {},
            id="ANY catches the methods the path does not define",
        ),
        pytest.param(
            ("ANY /pets/{id}", "GET /pets/{id}"),
            "GET",
            "/pets/1",
            "GET /pets/{id}",
            {"id": "1"},
            id="a specific method beats ANY on a param path",
        ),
        pytest.param(
            ("ANY /{proxy+}", "PUT /{proxy+}"),
            "PUT",
            "/x/y",
            "PUT /{proxy+}",
            {"proxy": "x/y"},
            id="a specific method beats ANY on a greedy path",
        ),
        pytest.param(
            ("ANY /pets/{id}", "GET /pets/{proxy+}"),
            "GET",
            "/pets/1",
            "ANY /pets/{id}",
            {"id": "1"},
            id="a full match with ANY beats a greedy match with the method",
        ),
        pytest.param(
            ("GET /pets/dog", "POST /pets/{id}"),
            "POST",
            "/pets/dog",
            "POST /pets/{id}",
            {"id": "dog"},
            id="a literal path without the method backtracks to a param route",
        ),
        pytest.param(
            ("GET /a/b/{x}", "GET /a/{y}/c"),
            "GET",
            "/a/b/c",
            "GET /a/b/{x}",
            {"x": "c"},
            id="deeper params do not outrank an earlier literal",
        ),
        pytest.param(
            ("GET /a/b/{x}/d", "GET /a/{y}/c/d"),
            "GET",
            "/a/b/c/e",
            None,
            None,
            id="backtracking finds no route when no branch fits",
        ),
        pytest.param(
            ("GET /a/b/{x}/d", "GET /a/{y}/c/e"),
            "GET",
            "/a/b/c/e",
            "GET /a/{y}/c/e",
            {"y": "b"},
            id="backtracking leaves a dead literal branch for a param branch",
        ),
        pytest.param(
            ("GET /u/{id}", "GET /u/{name}/posts"),
            "GET",
            "/u/ann/posts",
            "GET /u/{name}/posts",
            {"name": "ann"},
            id="routes name the same position differently",
        ),
        pytest.param(
            ("GET /o/{org}/r/{repo}",),
            "GET",
            "/o/acme/r/site",
            "GET /o/{org}/r/{repo}",
            {"org": "acme", "repo": "site"},
            id="several params are captured by name",
        ),
        pytest.param(
            ("GET /files/{dir}/{proxy+}",),
            "GET",
            "/files/a/b/c.txt",
            "GET /files/{dir}/{proxy+}",
            {"dir": "a", "proxy": "b/c.txt"},
            id="a param before a greedy is captured too",
        ),
        pytest.param(
            ("GET /pets", "$default"),
            "POST",
            "/pets",
            "$default",
            {},
            id="default catches a path whose method has no route",
        ),
        pytest.param(("GET /pets",), "POST", "/pets", None, None, id="no route and no default"),
        pytest.param(("GET /pets",), "GET", "/Pets", None, None, id="paths are case-sensitive"),
        pytest.param(("GET /",), "GET", "/", "GET /", {}, id="the root route matches the root"),
        pytest.param(
            ("ANY /{proxy+}", "GET /"),
            "GET",
            "/",
            "GET /",
            {},
            id="the root needs its own route next to a greedy root",
        ),
    ],
)
def test_precedence(
    keys: tuple[str, ...],
    method: str,
    path: str,
    expected: str | None,
    params: dict[str, str] | None,
) -> None:
    match = router(*keys).match(method, path)
    if expected is None:
        assert match is None
        return
    assert match is not None
    assert match.target == expected
    assert match.path_params == params


@pytest.mark.parametrize(
    ("keys", "path", "expected", "params"),
    [
        pytest.param(
            ("GET /pets",),
            "/pets/",
            None,
            None,
            id="a trailing slash does not match the literal route as on HTTP APIs",
        ),
        pytest.param(
            ("GET /pets", "$default"),
            "/pets/",
            "$default",
            {},
            id="a trailing slash falls through to default",
        ),
        pytest.param(
            ("GET /pets/{id}",), "/pets/", None, None, id="a param never matches an empty segment"
        ),
        pytest.param(
            ("GET /pets/{id}",),
            "/pets/1/",
            None,
            None,
            id="a trailing slash after a param is an extra empty segment",
        ),
        pytest.param(
            ("GET /pets/{proxy+}",),
            "/pets",
            None,
            None,
            id="greedy needs at least one segment after its prefix",
        ),
        pytest.param(
            ("GET /pets/{proxy+}",), "/pets/", None, None, id="greedy does not match an empty rest"
        ),
        pytest.param(
            ("GET /pets/{proxy+}",),
            "/pets/a/",
            "GET /pets/{proxy+}",
            {"proxy": "a/"},
            id="greedy keeps a trailing slash in its value",
        ),
        pytest.param(
            ("GET /{proxy+}",), "/", None, None, id="the root greedy does not match the root"
        ),
        pytest.param(
            ("GET /a/{x}/b",), "/a//b", None, None, id="an empty middle segment matches no param"
        ),
        pytest.param(
            ("GET /pets",), "pets", None, None, id="a path without a leading slash matches nothing"
        ),
    ],
)
def test_trailing_slash_and_empty_segments(
    keys: tuple[str, ...], path: str, expected: str | None, params: dict[str, str] | None
) -> None:
    match = router(*keys).match("GET", path)
    if expected is None:
        assert match is None
        return
    assert match is not None
    assert match.target == expected
    assert match.path_params == params


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param(
            "/users/j\u00fcrgen", {"id": "j\u00fcrgen"}, id="a decoded non-ascii value is kept"
        ),
        pytest.param("/users/a b", {"id": "a b"}, id="a decoded space is kept"),
        pytest.param("/users/100%", {"id": "100%"}, id="a literal percent is not decoded twice"),
        pytest.param("/users/a+b", {"id": "a+b"}, id="a plus in the path stays a plus"),
    ],
)
def test_param_values_come_from_the_decoded_path(path: str, params: dict[str, str]) -> None:
    match = router("GET /users/{id}").match("GET", path)
    assert match is not None
    assert match.path_params == params


def test_matches_return_fresh_param_dicts() -> None:
    r = router("GET /users/{id}", "GET /static")
    first = r.match("GET", "/users/1")
    assert first is not None
    first.path_params["id"] = "changed"
    second = r.match("GET", "/users/1")
    assert second is not None
    assert second.path_params == {"id": "1"}
    static = r.match("GET", "/static")
    assert static is not None
    static.path_params["x"] = "y"
    again = r.match("GET", "/static")
    assert again is not None
    assert again.path_params == {}


def test_an_empty_router_matches_nothing() -> None:
    assert Router[str]([]).match("GET", "/") is None
