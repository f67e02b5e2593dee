"""``python -m bpcore.training``: print the list of finetuning options the documentation site shows."""

from bpcore.training.options import options_markdown

print(options_markdown(), end="")
