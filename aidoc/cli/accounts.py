"""`aidoc account ...`: keystores, one per patient, doctor, provider or node."""

from __future__ import annotations

import json
from pathlib import Path

from web3 import Web3

from aidoc.cli.params import CommandGroup, JsonOption, console, emit, new_password
from aidoc.config import ServiceSettings
from aidoc.identity import Identity, save_keystore

app = CommandGroup("Keystores: one per patient, doctor, provider or node.")


@app.command("new")
def account_new(name: str) -> None:
    """Create a keystore NAME with a fresh key (password from AIDOC_PASSWORD or a prompt)."""
    services = ServiceSettings()
    password = new_password()
    identity = Identity.generate()
    path = save_keystore(services.keystore_dir, name, identity, password)
    console.print(f"{name}: {identity.address} (keystore {path})")


@app.command("list")
def account_list(as_json: bool = JsonOption) -> None:
    """List keystores and their addresses."""
    found = [(path.stem, _declared_address(path)) for path in sorted(ServiceSettings().keystore_dir.glob("*.json"))]
    emit(as_json, lambda: [{"name": name, "address": _checksummed(address)} for name, address in found],
         lambda: [f"{name}: 0x{address or '?'}" for name, address in found])


def _declared_address(path: Path) -> str | None:
    """The address a keystore file declares, as written there (hex without 0x), if any."""
    try:
        address = json.loads(path.read_text()).get("address")
    except ValueError:
        return None
    return address if isinstance(address, str) else None


def _checksummed(address: str | None) -> str | None:
    if address is None or not Web3.is_address("0x" + address.removeprefix("0x")):
        return None
    return Web3.to_checksum_address("0x" + address.removeprefix("0x"))
