"""Shared data models: Desired (manifests), Observed (tenant), Plan. Pure data, no I/O."""
