"""`make demo` (`python -m demos.marketplace`): the whole marketplace on a local stack it starts and stops.

anvil (or the chain at AIDOC_RPC_URL), Redis, the embedded IPFS store (or AIDOC_IPFS_API), a node's
Celery worker, watcher and sender. Then: patients add encrypted records and grant consent, a
provider registers two models, a node stakes, a doctor requests diagnoses, the node fulfils them,
the doctor decrypts and verifies the results, and the payment split and an audit trail are shown."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aidoc.chain.contracts import chain_time_in
from aidoc.chain.deployments import deploy_marketplace
from aidoc.config import AID, ENV_PREFIX, KeySettings, ServiceSettings, is_set, models_dir, project_dir
from aidoc.constants import DataType, Purpose, RequestStatus
from aidoc.errors import AidocError, exit_on_user_error
from aidoc.identity import Identity
from aidoc.stack.local import throwaway_stack
from aidoc.stack.testbed import TERMS

# 5 AID to the provider, 1 to the patient, 2 to the node per diagnosis; the node stakes 1,000.
ROYALTY, MODEL_PRICE, NODE_FEE, STAKE = TERMS.royalty, TERMS.model_price, TERMS.node_fee, TERMS.stake


@dataclass
class Cast:
    patients: list[Identity]
    doctor: Identity
    provider: Identity
    node: Identity


def wide_console() -> Console:
    """The terminal's width, or 200 columns when piped (logs and CI), so addresses are not cut."""
    return Console(width=None if sys.stdout.isatty() else 200)


def aid(units: int) -> str:
    return f"{Decimal(units) / AID:,.2f} AID"


def ensure_models(console: Console) -> Path:
    """The trained models and sample patient files (trained once per checkout)."""
    from aidoc.stack.testbed import ensure_trained_models

    directory = models_dir()
    if (directory / "metrics.json").exists():
        return directory
    with console.status("training the two models (seeded; once per checkout)"):
        return ensure_trained_models(directory)


@contextlib.contextmanager
def demo_stack(console: Console, name: str) -> Iterator[tuple[ServiceSettings, contextlib.ExitStack]]:
    """The throwaway stack in .run/<name> of the project, with the marketplace deployed."""
    with throwaway_stack(project_dir() / ".run" / name) as (services, stack):
        console.rule("1. stack")
        console.print(f"chain {services.rpc_url}  redis {services.redis_url}  "
                      f"ipfs {services.ipfs_api or 'embedded store ' + str(services.store_dir)}")
        with console.status("deploying the marketplace with Brownie"):
            deploy_marketplace(services)
        console.print(f"deployed the AIDoc marketplace; addresses in {services.deployments_dir}")
        yield services, stack


def run_demo(console: Console, patients: int = 6, requests_per_record: int = 1) -> None:
    from aidoc.stack.local import start_node

    keys = demo_keys()
    trained = ensure_models(console)
    with demo_stack(console, "demo") as (services, stack):
        run_flow(console, services, trained, patients, requests_per_record, stack, start_node, keys)
    console.print("stack stopped")


@dataclass(frozen=True)
class DemoKeys:
    """Where the demo keeps its accounts' keys on a chain it did not start (AIDOC_RPC_URL): a failed
    run can leave a doctor's escrow that only the doctor can cancel (`aidoc cancel`), and a node's
    stake that only the node can withdraw. On the demo's own anvil, the chain ends with the run."""

    directory: Path
    password: str


def demo_keys() -> DemoKeys | None:
    if not is_set("RPC_URL"):
        return None
    password = KeySettings().password
    if not password:
        raise AidocError(f"the demo runs on {ServiceSettings().rpc_url}, a chain it did not start: set "
                         f"{ENV_PREFIX}PASSWORD, which encrypts the keystores it keeps its accounts' keys in "
                         f"({ENV_PREFIX}KEYSTORE_DIR), so that you can cancel what a failed run leaves in escrow")
    return DemoKeys(ServiceSettings().keystore_dir, password)


def keep_keys(console: Console, keys: DemoKeys, cast: Cast) -> None:
    from aidoc.identity import save_keystore

    named = [("doctor", cast.doctor), ("provider", cast.provider), ("node", cast.node),
             *[(f"patient{index + 1}", patient) for index, patient in enumerate(cast.patients)]]
    names = []
    for role, identity in named:
        name = f"demo-{role}-{identity.address[2:10].lower()}"
        save_keystore(keys.directory, name, identity, keys.password)
        names.append(name)
    console.print(f"the demo's accounts are keystores in {keys.directory} (password: {ENV_PREFIX}PASSWORD): "
                  f"{names[0]}, {names[1]}, {names[2]} and {len(names) - 3} patients; should this run fail, "
                  f"`aidoc requests -a {names[0]}` lists what it left in escrow and `aidoc cancel ID -a {names[0]}` "
                  "refunds it after its deadline")


def start_supervised_node(console: Console, services: ServiceSettings, node: Identity, stack: contextlib.ExitStack,
                          start_node) -> None:
    """The node's processes under the NodeSupervisor, as `aidoc node run` runs them: a worker that
    dies is started again. The ExitStack stops the supervisor before the processes."""
    from aidoc.stack.local import NodeSupervisor

    processes = start_node(services, node)
    for process in processes:
        stack.callback(process.stop)
    supervisor = NodeSupervisor(processes, lambda line: console.print(f"[yellow]node:[/] {line}"))
    supervisor.start()
    stack.callback(supervisor.stop)


def run_flow(console: Console, services: ServiceSettings, models_dir: Path, patient_count: int,
             requests_per_record: int, stack: contextlib.ExitStack, start_node, keys: DemoKeys | None = None) -> None:
    from aidoc.flow.consent import grant_consent, revoke_consent
    from aidoc.flow.faucet import fund
    from aidoc.flow.model import register_model
    from aidoc.flow.node import register_node
    from aidoc.flow.record import add_record
    from aidoc.flow.session import Session

    cast = Cast([Identity.generate() for _ in range(patient_count)], Identity.generate(), Identity.generate(),
                Identity.generate())
    doctor = Session(cast.doctor, services)
    marketplace = doctor.marketplace
    store = doctor.store
    session = {who.address: Session(who, services, marketplace, store)
               for who in [*cast.patients, cast.provider, cast.node]}
    session[cast.doctor.address] = doctor
    if keys is not None:
        keep_keys(console, keys, cast)
    for who, amount in [(cast.doctor, 1_000 * AID), (cast.node, STAKE), *[(p, 0) for p in cast.patients],
                        (cast.provider, 0)]:
        fund(marketplace, who.address, eth=10 * AID, aid=amount)

    console.rule("2. models and node")
    provider = session[cast.provider.address]
    panel_model = register_model(provider, models_dir / "panel-mlp.safetensors", "breast-cancer-panel-mlp",
                                 DataType.LAB_PANEL, MODEL_PRICE)
    ecg_model = register_model(provider, models_dir / "ecg-cnn.safetensors", "ecg-rhythm-cnn", DataType.ECG,
                               MODEL_PRICE)
    console.print(f"provider {cast.provider.address} registered models {panel_model} (panel) and {ecg_model} (ECG)")
    register_node(session[cast.node.address], STAKE, NODE_FEE, [DataType.LAB_PANEL, DataType.ECG], gpu=False)
    start_supervised_node(console, services, cast.node, stack, start_node)
    console.print(f"node {cast.node.address} staked {aid(STAKE)}; its worker, watcher and sender are running "
                  "under its supervisor")

    console.rule("3. patients add encrypted records and grant consent")
    samples = interleaved_samples(models_dir / "samples")
    records: list[tuple[int, Identity, Path]] = []
    expiry = chain_time_in(marketplace.w3, 30)
    for index, patient in enumerate(cast.patients):
        sample = samples[index % len(samples)]
        record_id = add_record(session[patient.address], sample, [cast.node.address], ROYALTY)
        grant_consent(session[patient.address], record_id, cast.doctor.address, Purpose.DIAGNOSIS, expiry)
        records.append((record_id, patient, sample))
        console.print(f"patient {index + 1} ({patient.address[:10]}…): record {record_id} from {sample.name}, "
                      "consent to the doctor for diagnosis, 30 days")

    console.rule("4. the doctor requests diagnoses; the node fulfils them")
    before = balances(marketplace, cast)
    request_ids = request_diagnoses_and_wait(console, doctor, cast, records, requests_per_record, panel_model,
                                             ecg_model)
    console.rule("5. the doctor decrypts the results")
    show_results(console, doctor, request_ids, expected_labels(models_dir, records))
    console.rule("6. payments and an audit trail")
    show_payments(console, marketplace, cast, before)
    patient = session[records[0][1].address]
    revoke_consent(patient, records[0][0], cast.doctor.address, Purpose.DIAGNOSIS)
    console.print(f"patient 1 revokes the doctor's consent on record {records[0][0]}")
    show_audit(console, patient, records[0][0])


def interleaved_samples(directory: Path) -> list[Path]:
    """The sample patient files, alternating lab panels and ECGs so that both models are used."""
    from aidoc.records import load_record_file

    by_type: dict[DataType, list[Path]] = {}
    for path in sorted(directory.glob("*")):
        by_type.setdefault(load_record_file(path).data_type, []).append(path)
    if len(by_type) < 2:
        raise AidocError(f"sample records of both types are missing in {directory}; run scripts/train_models.py")
    panels, ecgs = by_type[DataType.LAB_PANEL], by_type[DataType.ECG]
    return [path for pair in zip(panels, ecgs) for path in pair] + panels[len(ecgs):] + ecgs[len(panels):]


def request_diagnoses_and_wait(console, doctor, cast: Cast, records, repeats: int, panel_model: int,
                               ecg_model: int) -> list[int]:
    from aidoc.flow.request import request_diagnosis
    from aidoc.flow.result import wait_for_settlements
    from aidoc.records import load_record_file

    request_ids = []
    for record_id, _, sample in records:
        model = panel_model if load_record_file(sample).data_type == DataType.LAB_PANEL else ecg_model
        for _ in range(repeats):
            request_id, _ = request_diagnosis(doctor, record_id, model, cast.node.address)
            request_ids.append(request_id)
    started = time.monotonic()
    with Progress(TextColumn("diagnoses"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("settled", total=len(request_ids))
        settled = wait_for_settlements(doctor, request_ids, timeout=180,
                                       progress=lambda _: progress.advance(task))
    failed = [s for s in settled.values() if s.status != RequestStatus.FULFILLED]
    console.print(f"{len(request_ids) - len(failed)} of {len(request_ids)} requests fulfilled in "
                  f"{time.monotonic() - started:.1f} s")
    if failed:
        raise AidocError("requests not fulfilled: " + ", ".join(
            f"{s.request_id} {s.status.name}{' ' + s.failure.name if s.failure else ''}" for s in failed))
    return request_ids


def expected_labels(models_dir: Path, records) -> dict[int, str]:
    """Record id -> the sample's true class (from the data set, the simulation, or the ECG's rate)."""
    import json

    truth = {s["file"]: s.get("truth", "?") for s in json.loads((models_dir / "metrics.json").read_text()).get(
        "samples", [])}
    return {record_id: truth.get(sample.name, "?") for record_id, _, sample in records}


def show_results(console, doctor, request_ids: list[int], expected: dict[int, str]) -> None:
    from aidoc.flow.result import fetch_result

    table = Table("request", "record", "model", "diagnosis", "expected", "probabilities", "commitment")
    for request_id in request_ids:
        opened = fetch_result(doctor, request_id)
        result = opened.result
        table.add_row(str(request_id), str(result["recordId"]), f"{result['model']['name']} v{result['model']['version']}",
                      result["label"], expected.get(result["recordId"], "?"), ", ".join(f"{k} {v:.2f}" for k, v in result["probabilities"].items()),
                      "verified")
    console.print(table)


def balances(marketplace, cast: Cast) -> dict[str, int]:
    token = marketplace.token.functions
    values = {who.address: token.balanceOf(who.address).call()
              for who in [*cast.patients, cast.doctor, cast.provider]}
    values[cast.node.address] = marketplace.market.functions.nodeAccount(cast.node.address).call()[0]
    return values


def show_payments(console, marketplace, cast: Cast, before: dict[str, int]) -> None:
    after = balances(marketplace, cast)
    table = Table("party", "address", "change")
    rows = [("doctor (paid)", cast.doctor), ("model provider", cast.provider), ("node (earnings to withdraw)", cast.node)]
    rows += [(f"patient {i + 1} (royalty)", p) for i, p in enumerate(cast.patients)]
    for label, who in rows:
        delta = after[who.address] - before[who.address]
        table.add_row(label, who.address, ("+" if delta >= 0 else "") + aid(delta))
    console.print(table)
    spent = before[cast.doctor.address] - after[cast.doctor.address]
    received = sum(after[w.address] - before[w.address] for w in [cast.provider, cast.node, *cast.patients])
    console.print(f"escrow settled: the doctor paid {aid(spent)}, the others received {aid(received)}")
    if spent != received:
        raise AidocError("the payment split does not add up")


def show_audit(console, patient_session, record_id: int) -> None:
    from aidoc.flow.audit import audit_trail

    table = Table("time (UTC)", "action", "who", "purposes", "detail", title=f"audit trail of record {record_id}")
    for entry in audit_trail(patient_session, record_id):
        table.add_row(time.strftime("%H:%M:%S", time.gmtime(entry.timestamp)), entry.action, entry.party,
                      str(entry.purposes.name), entry.detail)
    console.print(table)


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(description="The whole marketplace flow on a local stack it starts and stops.")
    parser.add_argument("--patients", type=int, default=6, help="patients with records (default 6)")
    parser.add_argument("--requests-per-record", type=int, default=1, help="diagnoses per record (default 1)")
    args = parser.parse_args()
    if args.patients < 1 or args.requests_per_record < 1:
        parser.error("--patients and --requests-per-record must be at least 1")
    run_demo(wide_console(), patients=args.patients, requests_per_record=args.requests_per_record)


if __name__ == "__main__":
    main()
