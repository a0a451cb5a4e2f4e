"""The web app in a real browser: Debian's chromium driven by Playwright, a test wallet injected
into the page (EIP-1193 + EIP-6963, browser_wallet.py), the server and the node on the real stack.
A patient's consented record is diagnosed by the node; the doctor opens the result in the browser,
which derives his encryption key from his wallet's signature, decrypts the sealed result and checks
it against its on-chain commitment; the patient sees the access in her audit trail; a wallet on
the wrong network gets a clear message. Screenshots go to reports/web/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser_wallet import TestWallet
from playwright.sync_api import expect, sync_playwright
from test_web_api import web  # noqa: F401 - the server fixture, shared

from aidoc.constants import DataType
from aidoc.flow.request import request_diagnosis
from aidoc.flow.result import fetch_result
from conftest import consented_record, samples_of, settle

REPORTS = Path(__file__).resolve().parents[2] / "reports" / "web"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def wallet_page(browser, base_url: str, session, stack, chain_id: int | None = None):
    context = browser.new_context(base_url=base_url)
    wallet = TestWallet(bytes(session.identity.account.key), stack.services.rpc_url, chain_id)
    wallet.install(context)
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(base_url) and not r.url.startswith("data:")
            else None)
    return context, page, wallet, outside


def connect(page, path: str) -> None:
    page.goto(path)
    expect(page.locator("#wallets option")).to_have_text("AIDoc test wallet")
    page.click("#connect")


def test_a_doctor_opens_and_verifies_a_result_and_the_patient_sees_the_access(browser, web, stack, node, doctor,  # noqa: F811
                                                                                 patient, models, models_dir):
    client, _, _ = web
    base = str(client.base_url).rstrip("/")
    record = consented_record(patient, doctor, node, samples_of(models_dir, DataType.LAB_PANEL)[0])
    request_id, _ = request_diagnosis(doctor, record, models[DataType.LAB_PANEL], node.address)
    settle(doctor, [request_id])
    expected = fetch_result(doctor, request_id).result["label"]
    REPORTS.mkdir(parents=True, exist_ok=True)

    context, page, wallet, outside = wallet_page(browser, base, doctor, stack)
    connect(page, "/doctor")
    expect(page.locator("#account")).to_have_text(doctor.address)
    button = page.locator(f"button[data-open='{request_id}']")
    expect(button).to_be_visible(timeout=30_000)
    button.click()
    result = page.locator("#result")
    expect(result).to_contain_text("matches its on-chain commitment", timeout=20_000)
    expect(result).to_contain_text(expected)
    assert page.locator("#result progress").count() == 2
    page.screenshot(path=str(REPORTS / "doctor.png"), full_page=True)
    assert not outside, f"the page made third-party requests: {outside}"
    context.close()

    context, page, _, outside = wallet_page(browser, base, patient, stack)
    connect(page, "/patient")
    trail = page.locator("main")
    expect(trail).to_contain_text(f"accessed by {doctor.address} through node {node.address} for request {request_id}",
                                  timeout=20_000)
    page.screenshot(path=str(REPORTS / "patient.png"), full_page=True)
    for path, name in (("/market", "market"), ("/explorer", "explorer"), ("/node", "nodes")):
        page.goto(path)
        expect(page.locator("main h2")).to_be_visible()
        page.screenshot(path=str(REPORTS / f"{name}.png"), full_page=True)
    assert not outside, f"the page made third-party requests: {outside}"
    context.close()


def test_a_wallet_on_the_wrong_network_gets_a_clear_message(browser, web, stack, doctor):  # noqa: F811
    client, _, _ = web
    base = str(client.base_url).rstrip("/")
    context, page, wallet, _ = wallet_page(browser, base, doctor, stack, chain_id=1)
    connect(page, "/doctor")
    expect(page.locator("#message")).to_contain_text("Your wallet is on chain 1")
    expect(page.locator("#message")).to_contain_text("Switch networks in your wallet")
    context.close()

