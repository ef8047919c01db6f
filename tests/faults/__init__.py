"""Fault suite: apply through injected throttling, 503s, latency, dropped connections and kill -9."""
