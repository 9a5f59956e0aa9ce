"""AWS Lambda Powertools apps, written exactly as for AWS: one HTTP API, one REST API."""

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.shared.cookies import Cookie

http_app = APIGatewayHttpResolver()
rest_app = APIGatewayRestResolver()


def _register(app, prefix):
    @app.get(f"{prefix}/items/<item_id>")
    def get_item(item_id):
        request = app.current_event
        return {
            "item_id": item_id,
            "color": request.get_query_string_value("color", "none"),
            "session": request.get_header_value("x-session", "none"),
            "cookie": _cookie(request, "flavor"),
        }

    @app.post(f"{prefix}/items")
    def create_item():
        item = app.current_event.json_body
        return Response(
            status_code=201,
            content_type=content_types.APPLICATION_JSON,
            body={"created": item, "size": len(item["tags"])},
            headers={"x-item-name": item["name"]},
            cookies=[
                Cookie(name="last", value=item["name"], path="/"),
                Cookie(name="count", value=str(len(item["tags"])), http_only=True),
            ],
        )


def _cookie(request, name):
    if getattr(request, "cookies", None):  # HTTP API 2.0 sends cookies apart
        raw = request.cookies
    else:
        raw = (request.get_header_value("cookie") or "").split(";")
    for pair in raw:
        key, _, value = pair.strip().partition("=")
        if key == name:
            return value
    return None


_register(http_app, "/pt")
_register(rest_app, "/rest")


def http_handler(event, context):
    return http_app.resolve(event, context)


def rest_handler(event, context):
    return rest_app.resolve(event, context)
