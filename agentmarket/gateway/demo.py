"""A paid "language model" service: a Starlette app behind :class:`PaymentMiddleware`.

``/generate`` is priced per output token (the handler reports how many it produced), ``/echo`` per call (``/free/echo``: the same handler, unpriced),
``/health`` is free. The "model" is a deterministic toy (a word-level generator seeded by the prompt): the
point is the metering and payment, not the text.

Run it as a process (the tests and the demo do)::

    AGENTMARKET_PRIVATE_KEYS=<payee key> python -m agentmarket.gateway.demo \\
        --chain http://127.0.0.1:8545 --contract 0x... --db gateway.sqlite --port 8000
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .server import PaymentGateway, PaymentMiddleware, Price, report_units

WORDS = [
    "market",
    "agent",
    "price",
    "channel",
    "token",
    "voucher",
    "signal",
    "model",
    "output",
    "trade",
    "settle",
    "claim",
    "value",
    "demand",
    "supply",
    "buyer",
    "seller",
    "escrow",
    "offer",
    "fill",
    "quote",
    "deal",
    "rate",
    "positive",
    "negative",
    "neutral",
]

DEFAULT_ROUTES = {
    "POST /generate": Price(
        10**9, unit="token", max_units=64, description="text generation, per output token"
    ),
    "/echo": Price(10**12, description="echo, per call"),
    "POST /fail": Price(10**12, description="always fails (no charge)"),
}


def generate(prompt: str, max_tokens: int) -> list[str]:
    """Deterministic toy generation: the prompt's hash picks the length and the words."""
    digest = hashlib.sha256(prompt.encode()).digest()
    length = 1 + digest[0] % max(1, max_tokens)
    return [WORDS[(digest[i % 32] + i) % len(WORDS)] for i in range(length)]


def build_app(gateway: PaymentGateway) -> Any:
    """The Starlette app wrapped in the payment middleware."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def generate_route(request: Request) -> JSONResponse:
        body = await request.json()
        max_tokens = min(int(body.get("max_tokens", 64)), 64)
        tokens = generate(str(body.get("prompt", "")), max_tokens)
        report_units(request, len(tokens))
        return JSONResponse({"text": " ".join(tokens), "tokens": len(tokens)})

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"echo": request.query_params.get("q", ""), "served": gateway.served + 1})

    async def fail(request: Request) -> JSONResponse:
        return JSONResponse({"error": "model crashed"}, status_code=500)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "payee": gateway.payee})

    app = Starlette(
        routes=[
            Route("/generate", generate_route, methods=["POST"]),
            Route("/echo", echo, methods=["GET", "POST"]),
            Route("/free/echo", echo, methods=["GET", "POST"]),  # the same handler, unpriced (bench baseline)
            Route("/fail", fail, methods=["POST"]),
            Route("/health", health),
        ]
    )
    return PaymentMiddleware(app, gateway)


def spawn(
    chain_url: str,
    contract: str,
    payee_key: bytes,
    db: str | Path,
    port: int,
    *,
    claim_interval: float = 30.0,
    log: str | Path | None = None,
    timeout: float = 120.0,  # a loaded 2-core CI machine can take tens of seconds to import and bind
    fast: bool = False,
) -> subprocess.Popen[bytes]:
    """Start this module as a server process (the payee key goes through the environment, never argv)
    and return once ``/health`` answers."""
    import httpx

    env = dict(os.environ, AGENTMARKET_PRIVATE_KEYS="0x" + bytes(payee_key).hex())
    cmd = [sys.executable, "-m", "agentmarket.gateway.demo", "--chain", chain_url, "--contract", contract]
    cmd += ["--db", str(db), "--port", str(port), "--claim-interval", str(claim_interval)]
    cmd += ["--fast"] if fast else []
    with open(log or os.devnull, "ab") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode} (log: {log})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"gateway did not answer within {timeout:.0f}s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from ..chain import Chain
    from ..clients.channels import ChannelClient
    from ..deploy import attach

    parser = argparse.ArgumentParser(prog="python -m agentmarket.gateway.demo", description=__doc__)
    parser.add_argument("--chain", required=True, help="JSON-RPC URL")
    parser.add_argument("--contract", required=True, help="PaymentChannels address")
    parser.add_argument("--db", required=True, help="SQLite voucher store")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--claim-interval", type=float, default=30.0)
    parser.add_argument("--min-ttl", type=int, default=600)
    parser.add_argument(
        "--fast", action="store_true", help="synchronous=NORMAL (crash-safe, not power-loss-safe)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("AGENTMARKET_LOG", "WARNING"))
    chain = Chain.connect(args.chain)  # the payee key comes from $AGENTMARKET_PRIVATE_KEYS, never argv
    contract = attach(chain, "PaymentChannels", args.contract)
    channels = ChannelClient(chain, contract, chain.accounts[0])
    gateway = PaymentGateway(
        channels,
        DEFAULT_ROUTES,
        args.db,
        min_ttl=args.min_ttl,
        claim_interval=args.claim_interval,
        durable=not args.fast,
    )
    uvicorn.run(build_app(gateway), host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
