"""`lamina init DIR`: a small working app to start from."""

from __future__ import annotations

from pathlib import Path

from lamina.errors import ClientError

__all__ = ["scaffold"]

_MANIFEST = """\
# {name}: a Lamina app. Reference: https://github.com/lamina (README, "Manifest reference").
app: {name}
services:
  api:
    path: services/api
    env:
      GREETING: Hello
    functions:
      hello:
        handler: handlers.hello   # module handlers.py, function hello
        memory: 128               # MB
        timeout: 3                # seconds
        events:
          - http: GET /hello
          - http: GET /hello/{{name}}
"""

_HANDLERS = """\
import os


def hello(event, context):
    \"\"\"An AWS Lambda handler: `event` is an API Gateway HTTP API (2.0) event.\"\"\"
    name = (event.get("pathParameters") or {}).get("name", "world")
    return {"message": f"{os.environ['GREETING']}, {name}!", "request_id": context.aws_request_id}
"""


def scaffold(target: Path) -> list[Path]:
    """Write the app into `target`; refuse to overwrite an existing lamina.yaml."""
    manifest = target / "lamina.yaml"
    if manifest.exists():
        raise ClientError(f"{manifest} already exists; choose an empty directory")
    name = (
        "".join(c if c.isalnum() else "-" for c in target.resolve().name.lower()).strip("-")
        or "app"
    )
    if not name[0].isalnum():
        name = "app-" + name
    files = {
        manifest: _MANIFEST.format(name=name),
        target / "services" / "api" / "handlers.py": _HANDLERS,
        target / ".gitignore": ".lamina/\n__pycache__/\n",
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(text)
    return list(files)
