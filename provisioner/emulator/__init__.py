"""A Graph-compatible tenant emulator: state and rules (state, plans, rules, query) apart from HTTP (routes).

See CONTRACT §4. Modules: demo (built-in tenants), state (data and seat counting), statefile (shape checks,
atomic writes), plans (which service plans are Calling Plans / Phone System), rules (Graph's licensing
rules), query (OData parsing), render (Graph JSON shapes), replies (error bodies, stats), faults (seeded
latency/429/503), routes (the starlette app), local (a state file served in process, writes persisted),
server (uvicorn on loopback).
"""
