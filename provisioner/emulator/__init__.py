"""A Graph-compatible tenant emulator: state and rules (state, rules, query) apart from HTTP (routes).

See CONTRACT §4. Modules: demo (built-in tenants), state (data + state file), rules (Graph's licensing rules),
query (OData parsing), faults (seeded latency/429/503), routes (the starlette app), local (in process),
server (uvicorn on loopback).
"""
