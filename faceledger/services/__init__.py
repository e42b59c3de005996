"""Use cases that span several packages: each checks the actor's right, changes state and
ledgers it; the caller commits.

They sit above the other service packages (watch, search, policy, auth), so none of those
needs to import another one upward: retention deletes probes and lapses authorisations of
searches, erasure is an admin's act on the ledger.
"""
