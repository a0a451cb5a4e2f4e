"""The gasless-consent relayer: a small server a node operator (or anyone with ETH) runs, which
submits patients' signed consent grants and revocations (ConsentRegistry.grantConsentBySig and
revokeConsentBySig) and pays their gas. It holds only its own key, relays nothing but those two
calls, checks each signature before it spends gas, and limits how often one signer may use it."""
