"""The pay-per-call gateway against a real uvicorn process on 127.0.0.1 (anvil chain).

Happy paths: the documented 402, paid per-call and per-token requests, a close that refunds the rest.
Faults: replayed and stale vouchers, a voucher for another channel or payee, a forged signature, a payer
who stops paying mid-stream, a server killed (SIGKILL) and restarted mid-stream, an overcharging server.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import httpx
import pytest
from service_helpers import GatewayProcess, make_agent

from agentmarket.agent import Agent
from agentmarket.chain import Chain
from agentmarket.clients.channels import ChannelStatus
from agentmarket.deploy import Suite
from agentmarket.errors import MandateViolation
from agentmarket.gateway import ChannelPayment, PaidClient, PaymentPayload, SettlementResponse, x402
from agentmarket.gateway.demo import DEFAULT_ROUTES
from agentmarket.mandate import Mandate
from agentmarket.types import ETH
from agentmarket.vouchers import VoucherDomain, VoucherStore

pytestmark = pytest.mark.anvil

ECHO = DEFAULT_ROUTES["/echo"].ceiling
TOKEN = DEFAULT_ROUTES["POST /generate"].unit_price
GEN_MAX = DEFAULT_ROUTES["POST /generate"].ceiling


def _store(proc: GatewayProcess) -> VoucherStore:
    domain = VoucherDomain(proc.chain.chain_id, proc.suite["PaymentChannels"].address)
    return VoucherStore(proc.db, domain)


def _required(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 402, response.text
    body = response.json()
    header = json.loads(base64.b64decode(response.headers[x402.HEADER_REQUIRED]))
    assert header == body
    return body  # type: ignore[no-any-return]


def _paid_echo(http: httpx.Client, n: int) -> list[SettlementResponse]:
    out = []
    for i in range(n):
        response = http.get("/echo", params={"q": str(i)})
        assert response.status_code == 200, response.text
        out.append(SettlementResponse.from_header(response.headers[x402.HEADER_RESPONSE]))
    return out


def test_unpaid_request_gets_the_documented_402(gateway_proc: GatewayProcess) -> None:
    response = httpx.get(gateway_proc.url + "/echo")
    body = _required(response)
    assert body["x402Version"] == 2 and body["error"] == x402.E_REQUIRED
    (req,) = body["accepts"]
    assert req["scheme"] == "agentmarket-channel"
    assert req["network"] == f"eip155:{gateway_proc.chain.chain_id}"
    assert req["payTo"] == gateway_proc.payee.address
    assert req["asset"] == ETH
    assert req["amount"] == str(ECHO)
    extra = req["extra"]
    assert extra["channelContract"] == gateway_proc.suite["PaymentChannels"].address
    assert extra["chainId"] == gateway_proc.chain.chain_id
    assert (extra["unit"], extra["unitPrice"], extra["maxUnits"]) == ("call", str(ECHO), 1)
    gen = _required(httpx.post(gateway_proc.url + "/generate", json={}))["accepts"][0]
    assert (gen["extra"]["unit"], gen["extra"]["unitPrice"], gen["amount"]) == (
        "token",
        str(TOKEN),
        str(GEN_MAX),
    )
    assert httpx.get(gateway_proc.url + "/health").status_code == 200  # free route passes through


def test_paid_calls_per_call_and_per_token_then_close(gateway_proc: GatewayProcess, buyer: Agent) -> None:
    with PaidClient(buyer, base_url=gateway_proc.url) as http:
        settled = _paid_echo(http, 3)
        assert [int(s.extra["chargedAmount"]) for s in settled] == [ECHO] * 3
        tokens = 0
        for prompt in ("hello", "world", "sentiment of this"):
            response = http.post("/generate", json={"prompt": prompt, "max_tokens": 64})
            assert response.status_code == 200
            used = response.json()["tokens"]
            tokens += used
            s = SettlementResponse.from_header(response.headers[x402.HEADER_RESPONSE])
            assert int(s.extra["chargedAmount"]) == used * TOKEN  # the actual use, not the ceiling
        session = http.payment.sessions[0]
        assert session.charged == 3 * ECHO + tokens * TOKEN
        channel = session.channel
        assert channel is not None and session.opened == 1
        stored = _store(gateway_proc).latest(channel.id)
        assert stored is not None and stored.voucher.amount == session.signed  # committed before serving
    (closed,) = http.closed_channels
    assert closed is not None and closed.transaction.startswith("0x")
    after = buyer.channels.channel(channel.id)
    assert after.status == ChannelStatus.CLOSED
    assert after.claimed == session.charged  # closed at the charged total, not the last ceiling
    assert int(closed.amount) == after.deposit - session.charged


def test_replayed_and_stale_vouchers_are_refused(gateway_proc: GatewayProcess, buyer: Agent) -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> None:
        if x402.HEADER_SIGNATURE in request.headers:
            seen.append(request.headers[x402.HEADER_SIGNATURE])

    with PaidClient(buyer, base_url=gateway_proc.url, event_hooks={"request": [record]}) as http:
        _paid_echo(http, 3)
        served_before = http.get("/echo").json()["served"]
        for header in (seen[-1], seen[0]):  # the latest voucher replayed, and a stale one
            response = httpx.get(gateway_proc.url + "/echo", headers={x402.HEADER_SIGNATURE: header})
            body = _required(response)
            assert body["error"] == x402.E_MISMATCH
            state = body["accepts"][0]["extra"]["channelState"]
            assert int(state["chargedCumulativeAmount"]) == 4 * ECHO
        # nothing was served for the replays
        assert http.get("/echo").json()["served"] == served_before + 1


def test_voucher_for_another_channel_payee_or_signer_is_refused(
    gateway_proc: GatewayProcess, buyer: Agent
) -> None:
    anvil, suite = gateway_proc.chain, gateway_proc.suite
    required = _required(httpx.get(gateway_proc.url + "/echo"))
    req = x402.PaymentRequirements.from_json(required["accepts"][0])
    # a channel that pays someone else: the key names another payee
    other = make_agent(anvil, suite)
    wrong = buyer.channels.open(other.address, 10 * ECHO, ttl=3600)
    payload = PaymentPayload(req, _ref(wrong), buyer.channels.sign_voucher(wrong.id, ECHO))
    body = _required(httpx.get(gateway_proc.url + "/echo", headers={x402.HEADER_SIGNATURE: payload.header()}))
    assert body["error"] == x402.E_CHANNEL_MISMATCH
    # a key that claims our payee but the voucher names another channel
    ours = buyer.channels.open(gateway_proc.payee.address, 10 * ECHO, ttl=3600)
    payload = PaymentPayload(req, _ref(ours), buyer.channels.sign_voucher(wrong.id, ECHO))
    body = _required(httpx.get(gateway_proc.url + "/echo", headers={x402.HEADER_SIGNATURE: payload.header()}))
    assert body["error"] == x402.E_CHANNEL_MISMATCH
    # a voucher for our channel signed by someone who is not the payer
    forged = other.channels.sign_voucher(ours.id, ECHO)
    payload = PaymentPayload(req, _ref(ours), forged)
    body = _required(httpx.get(gateway_proc.url + "/echo", headers={x402.HEADER_SIGNATURE: payload.header()}))
    assert body["error"] == x402.E_SIGNATURE
    # a voucher above the deposit
    payload = PaymentPayload(req, _ref(ours), buyer.channels.sign_voucher(ours.id, 11 * ECHO))
    body = _required(httpx.get(gateway_proc.url + "/echo", headers={x402.HEADER_SIGNATURE: payload.header()}))
    assert body["error"] == x402.E_EXCEEDS_BALANCE
    # a channel that does not exist
    ghost = _ref(ours)
    ghost = x402.ChannelRef(ghost.channel_id, ghost.payer, ghost.payee, ghost.asset, ghost.salt + 1)
    ghost = x402.ChannelRef(
        buyer.channels.channel_id(ghost.payer, ghost.payee, ghost.asset, ghost.salt),
        ghost.payer,
        ghost.payee,
        ghost.asset,
        ghost.salt,
    )
    payload = PaymentPayload(req, ghost, buyer.channels.sign_voucher(ghost.channel_id, ECHO))
    body = _required(httpx.get(gateway_proc.url + "/echo", headers={x402.HEADER_SIGNATURE: payload.header()}))
    assert body["error"] == x402.E_CHANNEL_NOT_FOUND
    assert _store(gateway_proc).latest(ours.id) is None  # nothing was stored for any of them


def test_payer_who_stops_paying_is_not_served_and_every_served_call_is_claimed(
    gateway_proc: GatewayProcess, buyer: Agent
) -> None:
    payment = ChannelPayment(buyer)
    with httpx.Client(base_url=gateway_proc.url, auth=payment) as http:
        served = len(_paid_echo(http, 5))
    # the payer walks away: the same requests without payment are refused, not served
    for _ in range(3):
        assert httpx.get(gateway_proc.url + "/echo").status_code == 402
    channel = payment.sessions[0].channel
    assert channel is not None
    # graceful shutdown (uvicorn re-raises SIGTERM after it): the final batch claim redeems the latest voucher
    assert gateway_proc.stop() in (0, -15)
    after = buyer.channels.channel(channel.id)
    assert after.claimed >= served * ECHO
    assert after.claimed <= (served + 1) * ECHO  # at most the one prepaid ceiling beyond the charges


def test_server_killed_and_restarted_mid_stream_loses_no_voucher(
    gateway_proc: GatewayProcess, buyer: Agent
) -> None:
    payment = ChannelPayment(buyer)
    ok = 0
    errors = 0
    with httpx.Client(base_url=gateway_proc.url, auth=payment, timeout=10) as http:
        ok += len(_paid_echo(http, 4))
        # kill it while requests are in flight
        stop = threading.Event()

        def killer() -> None:
            stop.wait(0.05)
            gateway_proc.kill()

        t = threading.Thread(target=killer)
        t.start()
        stop.set()
        for i in range(20):
            try:
                if http.get("/echo", params={"q": str(i)}).status_code == 200:
                    ok += 1
            except httpx.HTTPError:
                errors += 1
                break
        t.join()
        signed_before_restart = payment.sessions[0].signed
        store = _store(gateway_proc)
        channel = payment.sessions[0].channel
        assert channel is not None
        stored = store.latest(channel.id)
        # every voucher the server acknowledged (with a 200) is on disk after SIGKILL
        assert stored is not None and stored.voucher.amount >= ok * ECHO
        gateway_proc.start()  # same database, new process, new port
        http.base_url = httpx.URL(gateway_proc.url)
        ok += len(_paid_echo(http, 4))
        assert payment.sessions[0].signed > signed_before_restart
    assert gateway_proc.stop() in (0, -15)
    after = buyer.channels.channel(channel.id)
    # every served call is paid (per-call: the ledger saved with each voucher counts it at its price);
    # the payer paid at most one call it did not get (the request the kill interrupted)
    assert ok * ECHO <= after.claimed <= (ok + 1) * ECHO
    assert errors <= 1


def test_mandate_refuses_the_deposit_and_nothing_is_sent(gateway_proc: GatewayProcess) -> None:
    poor = make_agent(
        gateway_proc.chain, gateway_proc.suite, mandate=Mandate(budget={ETH: 5 * ECHO})
    )  # the default deposit is 100 calls
    nonce = gateway_proc.chain.w3.eth.get_transaction_count(poor.address)
    with (
        httpx.Client(base_url=gateway_proc.url, auth=ChannelPayment(poor)) as http,
        pytest.raises(MandateViolation),
    ):
        http.get("/echo")
    assert gateway_proc.chain.w3.eth.get_transaction_count(poor.address) == nonce
    # within the mandate (a smaller deposit) it pays
    payment = ChannelPayment(poor, deposit=5 * ECHO)
    with httpx.Client(base_url=gateway_proc.url, auth=payment) as http:
        assert len(_paid_echo(http, 5)) == 5
        # the sixth call needs a top-up the mandate refuses
        with pytest.raises(MandateViolation):
            http.get("/echo")


def test_failed_handler_charges_nothing_and_the_voucher_is_reused(
    gateway_proc: GatewayProcess, buyer: Agent
) -> None:
    payment = ChannelPayment(buyer)
    with httpx.Client(base_url=gateway_proc.url, auth=payment) as http:
        _paid_echo(http, 1)
        response = http.post("/fail")
        assert response.status_code == 500
        assert (
            SettlementResponse.from_header(response.headers[x402.HEADER_RESPONSE]).extra["chargedAmount"]
            == "0"
        )
        assert payment.sessions[0].charged == ECHO
        _paid_echo(http, 1)
        assert payment.sessions[0].charged == 2 * ECHO


@pytest.mark.parametrize("kind", ["agent", "async_agent"])
def test_async_client_pays_and_closes(
    gateway_proc: GatewayProcess, buyer: Agent, anvil: Chain, anvil_suite: Suite, kind: str
) -> None:
    """AsyncPaidClient with a plain Agent (moved to the loop view) and with an AsyncAgent of an
    AsyncMarket: the channel's open is awaited on the loop (AsyncHTTPProvider), no worker thread."""
    import anyio

    from agentmarket.aio import AsyncMarket, disconnect
    from agentmarket.gateway import AsyncPaidClient
    from agentmarket.market import Market

    market = AsyncMarket(Market(anvil, anvil_suite))
    before = market.transactor.sent

    async def run() -> Any:
        try:
            payer: Any = buyer if kind == "agent" else await market.agent("buyer", fund=10**18)
            async with AsyncPaidClient(payer, base_url=gateway_proc.url) as http:
                for _ in range(3):
                    assert (await http.get("/echo")).status_code == 200
                response = await http.post("/generate", json={"prompt": "async"})
                assert response.status_code == 200
            return http
        finally:
            await disconnect(anvil)

    http = anyio.run(run)
    session = http.payment.sessions[0]
    assert session.channel is not None and session.channel.status == ChannelStatus.CLOSED
    assert session.channel.claimed == session.charged
    # awaited sends: the channel's open (and, for the AsyncMarket agent, its funding)
    assert market.transactor.sent - before == (1 if kind == "agent" else 2)


def test_sync_client_with_an_agent_on_the_loop_view_is_refused(
    gateway_proc: GatewayProcess, anvil: Chain, anvil_suite: Suite
) -> None:
    """An agent whose chain I/O is awaited on a loop cannot pay from a synchronous client: a typed error
    before anything is sent."""
    import anyio

    from agentmarket.aio import AsyncMarket, disconnect
    from agentmarket.errors import ConfigError
    from agentmarket.market import Market

    market = AsyncMarket(Market(anvil, anvil_suite))

    async def make() -> Any:
        try:
            return await market.agent()
        finally:
            await disconnect(anvil)

    payer = anyio.run(make)
    nonce = anvil.w3.eth.get_transaction_count(payer.address)
    with PaidClient(payer, base_url=gateway_proc.url) as http, pytest.raises(ConfigError):
        http.get("/echo")
    assert anvil.w3.eth.get_transaction_count(payer.address) == nonce


def _ref(channel: Any) -> x402.ChannelRef:
    return x402.ChannelRef(channel.id, channel.payer, channel.payee, channel.asset, channel.salt)


@pytest.mark.parametrize("charge", [ECHO + 1])
def test_overcharging_server_is_disputed(charge: int, buyer: Agent) -> None:
    """The client side alone: a PAYMENT-RESPONSE charging above the voucher's allowance stops signing."""
    from agentmarket.gateway.client import PaymentDisputed, _Session

    payment = ChannelPayment(buyer)
    session = _Session(("n", ETH, ETH, ETH))
    session.last_requirements = x402.PaymentRequirements("eip155:1", ECHO, ETH, ETH, {})
    response = httpx.Response(
        200,
        headers={
            x402.HEADER_RESPONSE: SettlementResponse(
                True,
                "eip155:1",
                buyer.address,
                extra={
                    "chargedAmount": str(charge),
                    "channelState": {"chargedCumulativeAmount": str(charge)},
                },
            ).header()
        },
    )
    with pytest.raises(PaymentDisputed):
        payment._after(session, response)
    assert session.disputed
