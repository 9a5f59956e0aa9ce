def handler(event, context):
    print(f"served {context.aws_request_id}")
    return {"message": "hello"}
