"""The baseline: a FastAPI endpoint at the beacon's path that reads the body and answers 204."""

from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/v1/beacon")
async def beacon(request: Request) -> Response:
    await request.body()
    return Response(status_code=204)
