"""The node's transaction side: results batched into one fulfilBatch, a stuck transaction replaced
with higher fees, and a sender restarted with work waiting finishes it."""

from __future__ import annotations

import threading
import time

import pytest
from web3 import Web3

from aidoc.chain.transactions import Transactor
from aidoc.constants import DataType, RequestStatus
from aidoc.errors import ContentNotFound, ContentUnreachable, TransientError
from aidoc.flow.request import request_diagnosis
from aidoc.identity import Identity
from aidoc.node.namespace import NodeNamespace
from aidoc.node.outbox import Outbox
from aidoc.stack.process import free_port
from aidoc.stack.services import anvil
from conftest import consented_record, samples_of, settle

STRANGER = "0x000000000000000000000000000000000000dEaD"


def test_results_waiting_for_the_sender_go_out_in_one_fulfil_batch(node, doctor, models, models_dir, funded,
                                                                   redis_client):
    sender = next(p for p in node.processes if p.name == "sender")
    sender.stop()
    try:
        records = [consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[i % 2])
                   for i in range(5)]
        ids = [request_diagnosis(doctor, r, models[DataType.LAB_PANEL], node.address)[0] for r in records]
        outbox = Outbox(redis_client, NodeNamespace.of(doctor.marketplace, node.address))
        deadline = time.monotonic() + 60
        while outbox.depth()["pending"] < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert outbox.depth()["pending"] == 5
        assert all(s.status == RequestStatus.PENDING for s in settle_nothing(doctor, ids))
    finally:
        sender.start()
    settled = settle(doctor, ids)
    assert all(settled[i].status == RequestStatus.FULFILLED for i in ids)
    market = doctor.marketplace.market
    events = market.events.DiagnosisFulfilled().get_logs(from_block=doctor.marketplace.deployment.block_number)
    transactions = {e["transactionHash"] for e in events if e["args"]["requestId"] in ids}
    assert len(transactions) == 1
    deadline = time.monotonic() + 20  # the ciphertexts go to IPFS right after the fulfilment is final
    while outbox.depth() != {"pending": 0, "processing": 0, "publish": 0} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert outbox.depth() == {"pending": 0, "processing": 0, "publish": 0}
    for request_id in ids:
        assert doctor.store.cat(settled[request_id].result_cid)


def test_of_two_results_for_one_request_only_the_one_on_chain_is_published(node, doctor, models, models_dir,
                                                                           funded, redis_client):
    """A worker killed after queuing its result is redelivered and may queue a second, differently
    salted result for the same request: one is fulfilled, and the other's ciphertext never appears."""
    from dataclasses import replace

    from aidoc.crypto import seal_result
    from aidoc.storage import compute_cid

    sender = next(p for p in node.processes if p.name == "sender")
    sender.stop()
    try:
        record = consented_record(funded(0), doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
        request_id = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)[0]
        outbox = Outbox(redis_client, NodeNamespace.of(doctor.marketplace, node.address))
        deadline = time.monotonic() + 60
        while outbox.depth()["pending"] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        first = outbox.take(1, 0.1)[0][1]
        outbox.recover()
        sealed = seal_result(request_id, {"label": "second copy"}, doctor.identity.encryption_public_key)
        second = replace(first, commitment=sealed.commitment, ciphertext=sealed.ciphertext,
                         result_cid=compute_cid(sealed.ciphertext), queued_at=0.0)
        outbox.push(second)
    finally:
        sender.start()
    settled = settle(doctor, [request_id])[request_id]
    assert settled.status == RequestStatus.FULFILLED and settled.result_cid == first.result_cid
    deadline = time.monotonic() + 20
    while outbox.depth() != {"pending": 0, "processing": 0, "publish": 0} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert outbox.depth() == {"pending": 0, "processing": 0, "publish": 0}
    assert doctor.store.cat(first.result_cid) == first.ciphertext
    with pytest.raises((ContentNotFound, ContentUnreachable)):  # never published
        doctor.store.cat(second.result_cid)


def settle_nothing(doctor, ids):
    from aidoc.flow.result import settlement

    return [settlement(doctor, i) for i in ids]


def test_a_transaction_left_unmined_is_replaced_with_higher_fees(stack, funded):
    session = funded(100)
    w3 = session.marketplace.w3
    transactor = Transactor(w3, session.identity.account, stack.services.build_dir, tx_timeout=0.5)
    token = session.marketplace.token
    receipt = {}
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        sending = threading.Thread(target=lambda: receipt.update(
            transactor.send(token.functions.transfer(session.address, 1), "self-transfer")))
        sending.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _pending_count(w3) == 0:
            time.sleep(0.05)
        first = _pending_fees(w3, session.address)
        time.sleep(1.5)  # past tx_timeout: the transactor replaces it
        replaced = _pending_fees(w3, session.address)
        w3.provider.make_request("evm_mine", [])
        sending.join(timeout=20)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    assert receipt and receipt["status"] == 1
    assert replaced > first
    mined = w3.eth.get_transaction(receipt["transactionHash"])
    assert mined["maxFeePerGas"] == replaced and mined["nonce"] == 0
    assert w3.eth.get_transaction_count(session.address) == 1


def _pending_count(w3) -> int:
    return int(w3.provider.make_request("txpool_status", [])["result"]["pending"], 16)


def _pending_fees(w3, address: str) -> int:
    content = w3.provider.make_request("txpool_content", [])["result"]["pending"]
    by_sender = {k.lower(): v for k, v in content.items()}[address.lower()]
    (tx,) = by_sender.values()
    return int(tx["maxFeePerGas"], 16)


def test_a_transaction_an_earlier_sender_left_pending_is_replaced_at_start(stack, funded):
    session = funded(100)
    w3 = session.marketplace.w3
    token = session.marketplace.token
    w3.provider.make_request("evm_setAutomine", [False])
    try:
        stuck = token.functions.transfer(session.address, 1).build_transaction({
            "from": session.address, "gas": 100_000, "nonce": 0, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1})
        w3.eth.send_raw_transaction(session.identity.account.sign_transaction(stuck).raw_transaction)
        transactor = Transactor(w3, session.identity.account, stack.services.build_dir, tx_timeout=0.5)
        replaced = []
        worker = threading.Thread(target=lambda: replaced.append(transactor.replace_stuck()))
        worker.start()
        time.sleep(1.0)
        w3.provider.make_request("evm_mine", [])
        worker.join(timeout=20)
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    assert replaced == [1]
    block = w3.eth.get_block("latest", full_transactions=True)
    (mined,) = [tx for tx in block["transactions"] if tx["from"] == session.address]
    assert mined["nonce"] == 0 and mined["to"] == session.address and mined["value"] == 0 and mined["input"] in (b"", "0x")
    assert w3.eth.get_transaction_count(session.address, "pending") == 1


def _self_transfer(transactor: Transactor, value: int) -> dict:
    return transactor.transfer_eth(transactor.address, value)


def test_a_sender_on_a_restarted_chain_resends_once_and_voids_the_copy_behind_the_gap(tmp_path, stack):
    """A chain restarted under a running sender leaves its next nonce (here 3) above the chain's (0).
    Before the fix the transaction sat queued behind the gap, replaced with ever higher fees at the
    same nonce, and never mined; then it was sent again at 0 but its first copy stayed queued at 3,
    to be mined a second time once the gap filled. Now the copy at 3 becomes a 0-ETH self-transfer."""
    port, identity = free_port(), Identity.generate()
    chain = anvil(tmp_path, port, accounts=0).start()
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        w3.provider.make_request("anvil_setBalance", [identity.address, hex(10**19)])
        transactor = Transactor(w3, identity.account, stack.services.build_dir, tx_timeout=30)
        for _ in range(3):
            _self_transfer(transactor, 0)
        chain.stop()
        chain = anvil(tmp_path, port, accounts=0).start()  # same port and chain id, a new genesis
        w3.provider.make_request("anvil_setBalance", [identity.address, hex(10**19)])
        sent = 7  # the transaction that must be mined exactly once: it sends 7 wei to a stranger
        receipt = transactor.transfer_eth(STRANGER, sent)
        assert receipt["status"] == 1 and w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == 0
        assert transactor._nonce == 1
        for _ in range(2):  # fill the gap: nonces 1 and 2, then the queued 3 is mined
            _self_transfer(transactor, 0)
        w3.provider.make_request("evm_mine", [])
        assert w3.eth.get_transaction_count(identity.address) == 4
        assert w3.eth.get_balance(STRANGER) == sent
        queued = [tx for block in range(1, w3.eth.block_number + 1)
                  for tx in w3.eth.get_block(block, full_transactions=True)["transactions"] if tx["nonce"] == 3]
        assert len(queued) == 1 and queued[0]["to"] == identity.address and queued[0]["value"] == 0, queued
    finally:
        chain.stop()


def test_a_nonce_gap_without_a_lost_history_is_waited_out_not_resent(tmp_path, stack):
    """A pending count below our nonce on a chain that still holds our history (a load-balanced
    endpoint's backend that has not seen our transactions yet) is no evidence of a restart: the
    sender keeps its nonce and does not send the transaction a second time."""
    port, identity = free_port(), Identity.generate()
    chain = anvil(tmp_path, port, accounts=0).start()
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        w3.provider.make_request("anvil_setBalance", [identity.address, hex(10**19)])
        transactor = Transactor(w3, identity.account, stack.services.build_dir, tx_timeout=3, max_replacements=0)
        _self_transfer(transactor, 0)
        transactor._nonce = 3  # as if nonces 1 and 2 went to a backend this one has not heard from
        with pytest.raises(TransientError, match="stayed unmined"):
            transactor.transfer_eth(STRANGER, 7)
        assert w3.eth.get_transaction_count(identity.address) == 1 and w3.eth.get_balance(STRANGER) == 0
        assert w3.eth.get_transaction_count(identity.address, "pending") == 1  # nothing resent at nonce 1
    finally:
        chain.stop()
