"""A FastAPI app behind Mangum, written exactly as for AWS Lambda."""

from fastapi import Cookie, FastAPI, Header, Response
from mangum import Mangum
from pydantic import BaseModel

app = FastAPI()


class Item(BaseModel):
    name: str
    tags: list[str]


@app.get("/api/items/{item_id}")
def read_item(
    item_id: int,
    color: str = "none",
    x_session: str = Header("none"),
    flavor: str | None = Cookie(None),
):
    return {"item_id": item_id, "color": color, "session": x_session, "cookie": flavor}


@app.post("/api/items", status_code=201)
def create_item(item: Item, response: Response):
    response.headers["x-item-name"] = item.name
    response.set_cookie("last", item.name, path="/")
    response.set_cookie("count", str(len(item.tags)), httponly=True)
    return {"created": item.model_dump(), "size": len(item.tags)}


handler = Mangum(app, lifespan="off")
