"""Reports whether pydantic's plugin cache was already filled when this module's init began:
by the zygote that forked the instance, or not (the first instance, before it learned pydantic)."""

import os

import pydantic
from pydantic.plugin import _loader

FILLED = _loader._plugins is not None  # read before this module builds its first model


class Greeting(pydantic.BaseModel):
    message: str


def handler(event, context):
    return {"filled": FILLED, "pid": os.getpid(), **Greeting(message="hi").model_dump()}
