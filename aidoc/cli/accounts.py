"""`aidoc account ...`: keystores, one per patient, doctor, provider or node."""

from __future__ import annotations

from aidoc.cli.params import CommandGroup, JsonOption, console, emit, new_password
from aidoc.config import ServiceSettings
from aidoc.identity import Identity, keystore_address, save_keystore

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
    directory = ServiceSettings().keystore_dir
    found = [(path.stem, keystore_address(directory, path.stem)) for path in sorted(directory.glob("*.json"))]
    emit(as_json, lambda: [{"name": name, "address": address} for name, address in found],
         lambda: [f"{name}: {address or '?'}" for name, address in found])
