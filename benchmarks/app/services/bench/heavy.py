import httpx  # noqa: F401  (imported at module level on purpose: a realistic init)
import pydantic


class Greeting(pydantic.BaseModel):
    message: str


def handler(event, context):
    return Greeting(message="hello").model_dump()
