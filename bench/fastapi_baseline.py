"""The hot path's baseline: a careful engineer's 30-line FastAPI app for the same model.

The model is folded to ``slope * Weight + intercept`` before the app starts (``hot_path.py``
passes both numbers, read from the committed model's predictions at 0 and 1 lb), so a
request costs a JSON parse, a multiply-add and a JSON answer. Run by uvicorn with uvloop and
httptools, two workers, in the virtualenv ``hot_path.py`` makes: nothing of this project is
imported.
"""

import os

from fastapi import FastAPI
from pydantic import BaseModel

SLOPE = float(os.environ["BASELINE_SLOPE"])
INTERCEPT = float(os.environ["BASELINE_INTERCEPT"])

app = FastAPI()


class Row(BaseModel):
    Weight: float


@app.post("/predict")
async def predict(row: Row) -> dict:
    return {"Height": SLOPE * row.Weight + INTERCEPT}
