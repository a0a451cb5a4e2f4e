"""`aidoc`: the command line of AIDoc chain, one module per command group, as ape lays out its CLI.

main.py is the root app and only registers the groups; params.py holds what every group shares (the
--account and --json options, the parsers, who a command acts as, the table/JSON output) and the
one error policy: every command reads AIDOC_* settings (README), and a user's mistake, an OSError or
a web3 error ends it with one `error: ...` line on stderr and exit status 1, never a traceback.
A command that acts as someone takes --account NAME (a keystore in AIDOC_KEYSTORE_DIR, opened with
AIDOC_PASSWORD or a prompt) or AIDOC_PRIVATE_KEY; one that only reads the chain needs neither.

  stack.py      up, down, deploy, faucet
  accounts.py   account new | list
  records.py    record add
  consent.py    consent grant | revoke | list
  models.py     model register | list
  nodes.py      node register | run | list
  diagnoses.py  diagnose, result, audit
  training.py   train job open | run | show | provenance; train federated open | run | show"""
