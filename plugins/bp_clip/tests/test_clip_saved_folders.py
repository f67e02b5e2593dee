"""A saved CLIP folder resolves its tokenizer inside itself, within bounds, and leaves nothing in the temp folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tiny_clip import TINY_CONFIG, build_tiny_clip

import bpcore
from bpcore.testing.folders import reason, watching

TASKS = ["image-classification", "image-vectorisation", "text-vectorisation", "image-text-vectorisation"]
TEXTS = ["a red square", "blue stripes"]


def edit_text_config(folder: Path, **changes) -> None:
    path = folder / "open_clip_config.json"
    data = json.loads(path.read_text())
    data["model_cfg"]["text_cfg"].update(changes)
    path.write_text(json.dumps(data))


def hf_tokenizer_folder(folder: Path) -> Path:
    """A small Hugging Face tokenizer written with save_pretrained (what hf_tokenizer_name names)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<unk>", "<s>", "</s>", "a", "red", "square", "blue", "stripes", "photo", "of", "."]
    tokenizer = Tokenizer(
        models.WordLevel({word: index for index, word in enumerate(words)}, unk_token="<unk>")
    )
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    wrapped.save_pretrained(str(folder))
    return folder


@pytest.fixture
def saved_clip(shared_clip, tmp_path) -> Path:
    return Path(bpcore.save(shared_clip, path=tmp_path / "models" / "clip"))


@pytest.mark.parametrize("key", ["hf_tokenizer_name", "hf_model_name"])
@pytest.mark.parametrize("form", ["absolute", "relative", "hub-id"])
def test_a_saved_config_cannot_take_its_tokenizer_or_text_tower_from_elsewhere(
    saved_clip, tmp_path, key, form
):
    outside = hf_tokenizer_folder(tmp_path / "outside-tokenizer")
    value = {"absolute": str(outside), "relative": "../../outside-tokenizer", "hub-id": "bert-base-uncased"}[
        form
    ]
    edit_text_config(saved_clip, **{key: value})
    with watching(outside) as opened:
        with pytest.raises(bpcore.ModelLoadError) as refused:
            bpcore.load(saved_clip)
    assert f"text_cfg.{key} must name a folder inside the saved model" in reason(refused.value, tmp_path)
    assert opened == [], "the load read files outside the saved folder"


@pytest.mark.parametrize(
    ("section", "changes", "why"),
    [
        ("text_cfg", {"tokenizer_kwargs": {"bpe_path": "/etc/hostname"}}, "bpe_path names"),
        (
            "text_cfg",
            {"tokenizer_kwargs": {"additional_special_tokens": ["x"]}},
            "tokenizer_kwargs may only set",
        ),
        ("vision_cfg", {"timm_model_name": "local-dir:/elsewhere"}, "is not a timm architecture name"),
        ("vision_cfg", {"width": 10**9}, "beyond the bound"),
        (
            "text_cfg",
            {"context_length": 32},
            "does not match the weights",
        ),  # within bounds, not what was saved
    ],
    ids=["bpe-path", "other-kwargs", "timm-local-dir", "huge-width", "other-context"],
)
def test_other_names_and_sizes_in_a_saved_config_are_checked(saved_clip, tmp_path, section, changes, why):
    path = saved_clip / "open_clip_config.json"
    data = json.loads(path.read_text())
    data["model_cfg"][section].update(changes)
    path.write_text(json.dumps(data))
    with pytest.raises(bpcore.ModelLoadError) as refused:
        bpcore.load(saved_clip)
    assert why in reason(refused.value, tmp_path)


def test_a_hugging_face_tokenizer_is_saved_inside_and_loads_from_there(tmp_path):
    from bp_clip.model import CLIP

    config = {**TINY_CONFIG, "text_cfg": {**TINY_CONFIG["text_cfg"], "hf_tokenizer_name": ""}}
    config["text_cfg"]["hf_tokenizer_name"] = str(hf_tokenizer_folder(tmp_path / "tokenizer"))
    (tmp_path / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    model = CLIP(model_path=str(tmp_path / "config.json"), pretrained=None, device="cpu")
    folder = Path(bpcore.save(model, path=tmp_path / "models" / "hf-clip"))
    saved = json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]["text_cfg"]
    assert (
        saved["hf_tokenizer_name"] == "hf-tokenizer"
        and (folder / "hf-tokenizer" / "tokenizer.json").is_file()
    )
    with watching(tmp_path / "tokenizer") as opened:
        loaded = bpcore.load(folder)
    assert opened == []
    expected = model({"text": TEXTS}, task="text-vectorisation", return_tensor=True)
    assert torch.allclose(
        loaded({"text": TEXTS}, task="text-vectorisation", return_tensor=True), expected, atol=1e-6
    )


def test_a_hugging_face_text_tower_config_is_saved_inside_and_loads_from_there(tmp_path):
    import open_clip
    from safetensors.torch import save_file
    from transformers import BertConfig

    from bp_clip.loading import register_config
    from bp_clip.model import CLIP

    BertConfig(
        vocab_size=12, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    ).save_pretrained(tmp_path / "bert")
    text_config = {
        "hf_model_name": str(tmp_path / "bert"),
        "hf_tokenizer_name": str(hf_tokenizer_folder(tmp_path / "tokenizer")),
        "hf_pooler_type": "mean_pooler",
        "hf_proj_type": "linear",
        "context_length": 16,
    }
    config = {"embed_dim": 16, "vision_cfg": TINY_CONFIG["vision_cfg"], "text_cfg": text_config}
    (tmp_path / "config.json").write_text(json.dumps(config))
    torch.manual_seed(0)
    network = open_clip.create_model(register_config(config), pretrained=None, pretrained_text=False)
    save_file(
        {key: value.contiguous() for key, value in network.state_dict().items()}, tmp_path / "w.safetensors"
    )
    model = CLIP(
        model_path=str(tmp_path / "config.json"), pretrained=str(tmp_path / "w.safetensors"), device="cpu"
    )
    folder = Path(bpcore.save(model, path=tmp_path / "models" / "hf-text-clip"))
    assert (folder / "hf-text-config" / "config.json").is_file()
    with watching(tmp_path / "bert") as opened:
        loaded = bpcore.load(folder)
    assert opened == []
    expected = model({"text": TEXTS}, task="text-vectorisation", return_tensor=True)
    assert torch.allclose(
        loaded({"text": TEXTS}, task="text-vectorisation", return_tensor=True), expected, atol=1e-6
    )


def test_loading_leaves_nothing_in_the_temp_folder(saved_clip, tmp_path, run_python):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code = f"import bpcore; bpcore.load({str(saved_clip)!r}); print('loaded')"
    result = run_python(code, TMPDIR=str(scratch), HF_HUB_OFFLINE="1")
    assert result.returncode == 0 and "loaded" in result.stdout, result.stderr
    assert sorted(path.name for path in scratch.iterdir()) == []


def test_a_saved_clip_passes_the_folder_rules(tmp_path):
    from bpcore.testing import Candidate
    from bpcore.testing.folder_checks import FOLDER_STATS, folder_checks

    candidate = Candidate(
        lambda: build_tiny_clip(tmp_path / "clip", name="tiny-clip"), tasks=TASKS, name="tiny-clip"
    )
    FOLDER_STATS.clear()
    for check in folder_checks(candidate):
        check(candidate)
    assert all(count >= 4 for count in FOLDER_STATS.values()), FOLDER_STATS
