// The AIDoc chain web app: the user's own wallet (discovered by EIP-6963, spoken to by EIP-1193),
// the server's read-only API (/api, the indexer's view of the chain) and the browser's crypto
// (crypto.js, the same formats as the Python side). The server never sees a key: transactions and
// signatures happen in the wallet, and results are opened here.

import { encodeFunctionData } from "viem";
import { encryptionKeyFromSignature, encryptionKeyTypedData, hexToBytes, openResult } from "./crypto.js";

const state = { wallets: new Map(), provider: null, account: null, status: null, encryptionKey: null };
const $ = (id) => document.getElementById(id);

function say(text) { $("message").textContent = text; }

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function aid(wei) {
  const value = BigInt(wei);
  const whole = value / 10n ** 18n, fraction = (value % 10n ** 18n).toString().padStart(18, "0").replace(/0+$/, "");
  return `${whole}${fraction ? "." + fraction.slice(0, 4) : ""} AID`;
}

function when(seconds) { return seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) : ""; }

function short(hex) { return hex ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : ""; }

async function api(path) {
  let answer;
  try {
    answer = await fetch(path, { headers: { accept: "application/json" } });
  } catch {
    throw new Error("the AIDoc chain server does not answer: check that `aidoc web` is running, then reload");
  }
  const body = await answer.json().catch(() => ({ error: `the server answered ${answer.status}` }));
  if (!answer.ok) throw new Error(body.error || `the server answered ${answer.status}`);
  return body;
}

function table(headings, rows) {
  if (!rows.length) return "<p>Nothing yet.</p>";
  return `<table><thead><tr>${headings.map((h) => `<th scope="col">${esc(h)}</th>`).join("")}</tr></thead>` +
    `<tbody>${rows.map((cells) => `<tr>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
}

// --- wallet ----------------------------------------------------------------------------------------

window.addEventListener("eip6963:announceProvider", (event) => {
  const { info, provider } = event.detail;
  if (!info?.uuid || state.wallets.has(info.uuid)) return;
  state.wallets.set(info.uuid, { info, provider });
  const option = document.createElement("option");
  option.value = info.uuid;
  option.textContent = info.name;
  $("wallets").append(option);
});

async function connect() {
  const chosen = state.wallets.get($("wallets").value);
  if (!chosen) { say("No wallet found: install a browser wallet (MetaMask, Rabby, Frame) and reload."); return; }
  state.provider = chosen.provider;
  try {
    [state.account] = await state.provider.request({ method: "eth_requestAccounts" });
  } catch (error) {
    say(`The wallet refused to connect: ${error.message || error}`); return;
  }
  await checkChain();
  $("account").textContent = state.account;
  state.provider.on?.("accountsChanged", (accounts) => { state.account = accounts[0]; state.encryptionKey = null; render(); });
  state.provider.on?.("chainChanged", () => render());
  render();
}

async function checkChain() {
  const wanted = state.status.chainId;
  const current = parseInt(await state.provider.request({ method: "eth_chainId" }), 16);
  if (current === wanted) return true;
  say(`Your wallet is on chain ${current}; AIDoc chain here runs on chain ${wanted}. Switch networks in your wallet.`);
  try {
    await state.provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: "0x" + wanted.toString(16) }] });
    say("");
    return true;
  } catch {
    return false;
  }
}

async function send(contract, functionName, args) {
  if (!(await checkChain())) throw new Error(`switch your wallet to chain ${state.status.chainId} first`);
  const { address, abi } = state.status.contracts[contract];
  const data = encodeFunctionData({ abi, functionName, args });
  return state.provider.request({ method: "eth_sendTransaction", params: [{ from: state.account, to: address, data }] });
}

async function encryptionKey() {
  if (state.encryptionKey) return state.encryptionKey;
  const typed = encryptionKeyTypedData(state.account);
  const signature = await state.provider.request({ method: "eth_signTypedData_v4", params: [state.account, JSON.stringify(typed)] });
  state.encryptionKey = await encryptionKeyFromSignature(signature);
  return state.encryptionKey;
}

// --- pages -----------------------------------------------------------------------------------------

const PURPOSES = ["diagnosis", "research", "training", "insurance", "audit"];
const purposes = (mask) => PURPOSES.filter((_, bit) => mask & (1 << bit)).join(", ");

function describe(event) {
  const a = event.args;
  switch (event.name) {
    case "RecordRegistered": return `record ${a.recordId} registered`;
    case "ConsentGranted": return `consent for ${purposes(a.purposes)} granted to ${a.grantee} until ${when(a.expiry)}`;
    case "ConsentRevoked": return `consent for ${purposes(a.purposes)} revoked from ${a.grantee}`;
    case "RecordAccessed": return `accessed by ${a.grantee} through node ${a.node} for request ${a.requestId}`;
    case "RecordRetired": return "record retired";
    default: return event.name;
  }
}

async function patientPage() {
  if (!state.account) return "<h2>Patient</h2><p>Connect your wallet to see your records.</p>";
  const me = state.account;
  const [records, audit, royalties] = await Promise.all([
    api(`/api/patients/${me}/records`), api(`/api/patients/${me}/audit`), api(`/api/patients/${me}/royalties`)]);
  const rows = records.items.map((r) => [esc(r.recordId), esc(r.dataType), `<code>${esc(short(r.ciphertextCid))}</code>`,
    r.consents.map((c) => `${esc(c.grantee)} (${esc(purposes(c.purposes))}) ` +
      `<button type="button" data-revoke="${esc(r.recordId)}:${esc(c.grantee)}:${esc(c.purposes)}">Revoke</button>`).join("<br>"),
    esc(r.accesses), r.retired ? "retired" : "active"]);
  const trail = audit.items.map((e) => [esc(when(e.time)), esc(describe(e)), `<code>${esc(short(e.tx))}</code>`]);
  return `<h2>Patient</h2><p>Royalties earned: ${esc(aid(royalties.earned))}</p>` +
    `<h3>My records</h3>${table(["Record", "Type", "Ciphertext", "Consents", "Accesses", "State"], rows)}` +
    `<h3>Audit trail</h3>${table(["Time", "What", "Transaction"], trail)}`;
}

async function doctorPage() {
  if (!state.account) return "<h2>Doctor</h2><p>Connect your wallet to see your requests.</p>";
  const [granted, requests] = await Promise.all([
    api(`/api/grantees/${state.account}/records`), api(`/api/requesters/${state.account}/requests`)]);
  const records = granted.items.map((r) => [esc(r.recordId), esc(r.owner), esc(r.dataType), esc(purposes(r.purposes)), esc(when(r.expiry))]);
  const rows = requests.items.map((q) => [esc(q.requestId), esc(q.recordId), esc(q.modelId),
    esc(aid(BigInt(q.modelFee) + BigInt(q.royalty) + BigInt(q.nodeFee))), esc(q.status),
    q.status === "fulfilled" ? `<button type="button" data-open="${esc(q.requestId)}">Open result</button>` : ""]);
  return `<h2>Doctor</h2><h3>Records consented to me</h3>${table(["Record", "Owner", "Type", "Purposes", "Until"], records)}` +
    `<h3>My requests</h3>${table(["Request", "Record", "Model", "Paid", "Status", ""], rows)}<section id="result" aria-live="polite"></section>`;
}

async function openRequest(requestId) {
  const detail = await api(`/api/requests/${requestId}`);
  const key = await encryptionKey();
  const answer = await fetch(`/api/ipfs/${detail.outcome.resultCid}`);
  if (!answer.ok) throw new Error("the sealed result is not on IPFS (yet); try again in a moment");
  const opened = await openResult(new Uint8Array(await answer.arrayBuffer()), key.privateKey);
  const verified = opened.commitment === detail.outcome.resultCommitment && opened.requestId === BigInt(requestId);
  const probabilities = opened.result.probabilities || {};
  const bars = Object.entries(probabilities).map(([label, p]) =>
    `<li><label>${esc(label)} <progress max="1" value="${esc(Number(p))}"></progress> ${esc((Number(p) * 100).toFixed(1))}%</label></li>`);
  $("result").innerHTML = `<h3>Result of request ${esc(requestId)}</h3><p><strong>${esc(opened.result.label)}</strong> — ` +
    `${verified ? "matches its on-chain commitment" : "DOES NOT match its on-chain commitment: do not rely on it"}</p>` +
    `<ul>${bars.join("")}</ul>`;
}

async function marketPage() {
  const models = await api("/api/models?limit=200");
  return `<h2>Model market</h2>${table(["Model", "Name", "Version", "Input", "Price", "Rating", "Used", "State"],
    models.items.map((m) => [esc(m.modelId), esc(m.name), esc(m.version), esc(m.inputType), esc(aid(m.price)),
      esc(m.rating ?? "none"), esc(m.usage), m.suspended ? "suspended" : m.deactivated ? "withdrawn" : "listed"]))}`;
}

async function nodePage() {
  const nodes = await api("/api/nodes?limit=200");
  return `<h2>Nodes</h2>${table(["Node", "Stake", "Fee", "GPU", "Requests", "Failures", "Last request"],
    nodes.items.map((n) => [`<code>${esc(n.node)}</code>`, esc(aid(n.stake)), esc(aid(n.fee)), n.gpu ? "yes" : "no",
      esc(n.requests), esc(n.failures), esc(when(n.lastRequest))]))}`;
}

async function explorerPage() {
  const q = new URLSearchParams(location.search).get("q");
  let events;
  if (q) {
    const found = await api(`/api/search?q=${encodeURIComponent(q)}`);
    events = found.events?.items || found.record || found.request?.events || [];
  } else {
    events = (await api("/api/events")).items;
  }
  return `<h2>Explorer</h2><form role="search" id="search"><label for="q">Transaction, address, request or record</label> ` +
    `<input id="q" name="q" value="${esc(q || "")}"> <button type="submit">Search</button></form>` +
    table(["Block", "Time", "Contract", "Event", "Arguments", "Transaction"], events.map((e) => [esc(e.block), esc(when(e.time)),
      esc(e.contract), esc(e.name), `<code>${esc(JSON.stringify(e.args))}</code>`, `<code>${esc(short(e.tx))}</code>`]));
}

const PAGES = { "/patient": patientPage, "/doctor": doctorPage, "/market": marketPage, "/node": nodePage, "/explorer": explorerPage };

async function render() {
  const page = PAGES[location.pathname] || marketPage;
  try {
    $("main").innerHTML = await page();
    say("");
  } catch (error) {
    say(error.message || String(error));
  }
}

document.addEventListener("click", async (event) => {
  const target = event.target;
  try {
    if (target.dataset?.revoke) {
      const [record, grantee, mask] = target.dataset.revoke.split(":");
      target.disabled = true;
      await send("ConsentRegistry", "revokeConsent", [BigInt(record), grantee, Number(mask)]);
      say("Consent revoked: the change shows here once the transaction is mined.");
    } else if (target.dataset?.open) {
      await openRequest(target.dataset.open);
    }
  } catch (error) {
    target.disabled = false;
    say(error.shortMessage || error.message || String(error));
  }
});

document.addEventListener("submit", (event) => {
  if (event.target.id !== "search") return;
  event.preventDefault();
  location.search = `?q=${encodeURIComponent($("q").value.trim())}`;
});

async function start() {
  $("connect").addEventListener("click", connect);
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  try {
    state.status = await api("/api/status");
  } catch (error) {
    say(error.message);
    return;
  }
  await render();
  setInterval(() => { if (location.pathname === "/doctor" && !$("result")?.innerHTML) render(); }, 3000);
}

start();
