"""Reports whether the zygote had already imported this module's library before its init."""

import os
import sys

PRELOADED = "xml.dom.minidom" in sys.modules  # read before this module imports it

import xml.dom.minidom  # noqa: E402,F401  (a library the zygote does not import by itself)


def handler(event, context):
    return {"preloaded": PRELOADED, "pid": os.getpid()}
