"""Admission of data-plane calls: key state and scopes, rate limits, concurrency, budgets,
shadow mode and the Redis failure policy. `governor.Governor` is what the handlers call.

Modules here never import `index` at import time (index imports `rules` from here).
"""
