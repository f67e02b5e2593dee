"""``python -m bpcore.training``: print the README's list of finetuning options (a test compares)."""

from bpcore.training.options import options_markdown

print(options_markdown(), end="")
