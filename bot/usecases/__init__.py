"""The use cases: one module each, a few public functions, each one transaction.

Every function takes the ``Core`` (database, configuration, clock, wake-ups) first. A function
that changes something validates, checks the actor's role, loads what it needs, asks the policy
what the history means, writes what changed (the history, events, notices, reminders, the audit
entry) together and commits — or raises a ``PncError`` having written nothing.
"""
