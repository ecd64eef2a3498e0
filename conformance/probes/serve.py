"""The serving probe: a tiny FastAPI model server, run from the suite's image by the SRV checks.

``python -m conformance.probes.serve [--host H] [--port P]`` serves (defaults ``$HOST`` else
``0.0.0.0``, ``$PORT`` else 8080, the Deployment's ``containerPort``):

* ``GET /healthz`` -> ``{"status": "ok"}`` (the readiness probe);
* ``POST /predict`` with ``{"instances": [[x1, x2], ...]}`` -> ``{"model": MODEL, "predictions":
  [...]}``, a fixed linear model (:func:`predict`), so the check knows the right answer.

``CONFORMANCE_PROBE_FAULT`` makes the app misbehave, for the suite's own tests only (the sandbox
sets it in its fault namespaces; nothing on a platform does): ``crash`` (exits at start),
``hang`` (``/predict`` never answers), ``wrong`` (answers with wrong predictions).

FastAPI and uvicorn are imported when the app is built, never by the checks, which only use
:func:`predict` and :data:`MODEL`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

MODEL = "conformance-linear-v1"
WEIGHTS = (2.0, -1.0)
BIAS = 0.5
FAULT_VAR = "CONFORMANCE_PROBE_FAULT"


def predict(instances: Sequence[Sequence[float]]) -> list[float]:
    """The model: ``2*x1 - x2 + 0.5`` per instance (missing features are 0)."""
    return [round(sum(w * float(x) for w, x in zip(WEIGHTS, row, strict=False)) + BIAS, 6) for row in instances]


def app(fault: str = "") -> Any:
    from fastapi import Body, FastAPI  # noqa: PLC0415 - only the probe's process needs them

    api = FastAPI(title="conformance serving probe", docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.post("/predict")
    async def predict_route(payload: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008 - FastAPI's idiom
        if fault == "hang":
            await asyncio.Event().wait()  # never set: the request never gets an answer
        instances = payload.get("instances")
        if not isinstance(instances, list) or not all(isinstance(row, list) for row in instances):
            return {"error": "instances: a list of lists of numbers is required"}
        found = predict(instances)
        if fault == "wrong":
            found = [value + 1.0 for value in found]
        return {"model": MODEL, "predictions": found}

    return api


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.probes.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST") or "0.0.0.0")  # noqa: S104 - a pod serves its Service
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8080))
    args = parser.parse_args(argv)
    fault = os.environ.get(FAULT_VAR, "")
    if fault == "crash":
        print(f"{FAULT_VAR}=crash: exiting before serving", file=sys.stderr)
        return 1
    import uvicorn  # noqa: PLC0415 - only the probe's process needs it

    print(f"serving {MODEL} on {args.host}:{args.port}", flush=True)
    uvicorn.run(app(fault), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
