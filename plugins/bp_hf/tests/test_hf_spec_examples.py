"""The spec's T5 examples (1.4, 5.x) run unchanged, with a tiny T5 where the hub would keep t5-small."""

from __future__ import annotations

import json

from tiny_hf import tiny_t5_folder

from bpcore.testing.hub_cache import place_in_hub_cache, run_offline

QUICK_START = """
from bpcore.models import T5
from bpcore import TextGeneration

tg = TextGeneration(T5)

# Any text works as training data
inp = ["I really liked the service I received!", "Meh, it was not impressive."]
out = ["positive", "negative"]

weights = [p.detach().clone() for p in tg.model.parameters()]  # added: to check the finetune did something
# Finetune with a single line of code
tg.finetune({"input_text": inp, "output_text": out})

# Use your trained model
prediction = tg("I enjoyed it!")

import json
moved = any(not (w == p).all() for w, p in zip(weights, tg.model.parameters()))
print(json.dumps({"prediction": prediction, "moved": bool(moved), "class": type(tg.model).__name__}))
"""


def test_the_quick_start_finetunes_the_class_the_spec_imports(tmp_path):
    cache = tmp_path / "hub"
    place_in_hub_cache(tiny_t5_folder(tmp_path / "t5"), "google-t5/t5-small", cache)
    done = run_offline(QUICK_START, cache, cwd=tmp_path)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["class"] == "T5"
    # The spec's two examples and default options are too little for a tiny T5 to learn the words
    # (test_hf_generation shows finetuning learning); here: it runs as written and trains.
    assert isinstance(result["prediction"], str) and result["moved"]
