"""Moved to :mod:`bpcore.training.distributed`; kept only until ``bpcore.saving`` imports it from there."""

from bpcore.training.distributed import process_index, wait_for_processes, world_size

__all__ = ["process_index", "wait_for_processes", "world_size"]
