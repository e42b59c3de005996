"""Who is acting: users, roles, passwords, API tokens and login, every step ledgered.

Every search and every change is tied to an authenticated person, so the services here
establish that person (password or token) and check their roles before anything happens;
each attempt and each change leaves a ledger entry.
"""
