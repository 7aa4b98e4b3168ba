"""Writes: every change to applications, runs and tokens goes through one of these services.

* ``applications`` — importing applications from a Lime-style config
* ``sending`` — recording a run and publishing its message (what every send comes down to)
* ``starting`` — the one way a person starts a task, with its permission policy and audit entry
* ``cancelling`` — cancelling a waiting or running run, audited
* ``history`` — the Task starter history: recording runs in it and keeping it short
* ``worker`` — what a task handler reports: started, finished, skipped, progress
* ``maintenance`` — heartbeats, reconciling runs that cannot finish, purging expired ones
* ``tokens`` — API tokens
"""
