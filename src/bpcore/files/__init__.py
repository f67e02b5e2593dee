"""Batch inference over data files: :func:`run_file` (``bpcore run TASK --data IN --out OUT``).

Rows stream from JSON Lines, CSV or Parquet; answers stream to JSON Lines, in order, and a
stopped run goes on where it stopped. Importing this package imports no torch.
"""

from bpcore.files.runner import DEFAULT_BATCH_SIZE, RunSummary, run_file

__all__ = ["DEFAULT_BATCH_SIZE", "RunSummary", "run_file"]
