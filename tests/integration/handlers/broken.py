raise ImportError("this module fails at init on purpose")


def handler(event, context):
    return "never"
