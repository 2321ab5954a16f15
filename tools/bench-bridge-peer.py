#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The seed's stack for tools/bench-bridge: a minimal FastAPI app under
uvicorn (Debian's python3-fastapi and python3-uvicorn) serving the same
JSON and metrics text the bridge served, from memory, behind the same
bearer-token check.

Usage: bench-bridge-peer.py DEVICES_JSON METRICS_TXT TOKEN PORT"""

import json
import sys

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import PlainTextResponse

devices_path, metrics_path, TOKEN, port = sys.argv[1:5]
with open(devices_path) as f:
    DEVICES = json.load(f)
with open(metrics_path) as f:
    METRICS = f.read()

app = FastAPI()


def token(authorization: str = Header(default="")):
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(status_code=401, detail="invalid token")


@app.get("/api/devices", dependencies=[Depends(token)])
async def devices():
    return DEVICES


@app.get("/metrics", dependencies=[Depends(token)], response_class=PlainTextResponse)
async def metrics():
    return METRICS


uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False)
