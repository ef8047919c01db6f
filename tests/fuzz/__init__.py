"""Hostile-input suite: hypothesis fuzzing of the manifest loader and the emulator request parsing."""
