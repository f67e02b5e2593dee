"""Tiny Hugging Face models for the bp-hf tests: random weights, tokenizers trained offline.

Each builder writes a folder with ``save_pretrained`` (model and tokenizer) and returns its path,
so tests load it the way a user does: ``T5QASummaryEmotion(model_path=folder)``.
"""

from __future__ import annotations

from pathlib import Path

WORDS = (
    "the a an is was are be it this that of in on at to for with from by and or but not no yes "
    "what where who when why how which question answer context summary summarise emotion "
    "q a c sally lives london paris berlin rome madrid tokyo bob moog invented synthesizer physicist "
    "backprop python library trains models makes training using easier language "
    "i really liked service received meh impressive positive negative neutral joy anger sadness "
    "love hate happy sad angry great bad good terrible wonderful awful movie film book game "
    "football match goal team player score won lost season coach league cup "
    "election vote government minister parliament policy law president party tax "
    "computer software code program data network chip processor science research paper "
    "cat dog bird fish tree river mountain sea sky sun rain snow wind cloud "
    "long document contains plenty words short news article political happenings scientific "
    "one two three four five six seven eight nine ten red green blue yellow black white "
    "he she they we you me my your his her their our lives live city country capital "
    "example category topic sports politics technology nature weather food music art "
    "quick brown fox jumps over lazy geralt knew signs monster like go beach because sun "
    "contradiction entailment neutral hypothesis premise true false maybe"
).split()


def _vocabulary(specials: list[str]) -> dict[str, int]:
    """Specials, every word of ``WORDS``, and single characters so unseen words still tokenize.

    Built, not trained: ``WordPieceTrainer`` breaks frequency ties in hash order, so a trained
    vocabulary (its tokens and their ids) differed between processes and so did the tiny models'
    answers.
    """
    characters = sorted({character for word in WORDS for character in word} | set("0123456789"))
    tokens = [*specials, *characters, *(f"##{character}" for character in characters), *sorted(set(WORDS))]
    return {token: index for index, token in enumerate(dict.fromkeys(tokens))}


def train_tokenizer(
    folder: Path,
    *,
    kind: str,
    model_max_length: int = 512,
):
    """Build a word-level WordPiece tokenizer offline and save it (``kind``: t5, gpt2 or bert).

    The same vocabulary, in the same order, in every process.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>", "[CLS]", "[SEP]"]
    tokenizer = Tokenizer(
        models.WordPiece(vocab=_vocabulary(specials), unk_token="<unk>", max_input_chars_per_word=30)
    )
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    ids = {token: tokenizer.token_to_id(token) for token in specials}
    if kind == "t5":
        tokenizer.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", ids["</s>"])]
        )
    elif kind == "bert":
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])],
        )
    extra: dict = {}
    if kind == "bert":  # BERT tells premise from hypothesis by token types, as its real tokenizer says
        extra = {"cls_token": "[CLS]", "sep_token": "[SEP]"}
        extra["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
        **extra,
    )
    wrapped.save_pretrained(str(folder))
    return wrapped


def tiny_t5_folder(folder: Path, *, model_max_length: int = 512, seed: int = 0) -> Path:
    """A 2-layer T5 (d_model 32) with its own tokenizer, saved to ``folder``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    folder = Path(folder)
    tokenizer = train_tokenizer(folder, kind="t5", model_max_length=model_max_length)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    model = T5ForConditionalGeneration(config)
    _suppress_specials(model, tokenizer)
    model.save_pretrained(str(folder))
    return folder


def _suppress_specials(model, tokenizer) -> None:
    """Untrained weights favour some token at random, often ``<pad>``: the tiny models then
    "write" nothing but special tokens, which decode to ''. A trained model never writes them,
    so generation leaves them out, as a saved ``generation_config`` may ask."""
    specials = [tokenizer.convert_tokens_to_ids(token) for token in ("<pad>", "<unk>", "[CLS]", "[SEP]")]
    model.generation_config.suppress_tokens = specials


def tiny_gpt2_folder(folder: Path, *, seed: int = 0) -> Path:
    """A 2-layer GPT-2 (n_embd 32) with its own tokenizer, saved to ``folder``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = Path(folder)
    tokenizer = train_tokenizer(folder, kind="gpt2", model_max_length=128)
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    _suppress_specials(model, tokenizer)
    model.save_pretrained(str(folder))
    return folder


#: A deliberately non-standard label order: the entailment index must be read from label2id.
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}


def tiny_bert_folder(
    folder: Path,
    *,
    id2label: dict[int, str] | None = None,
    num_layers: int = 2,
    hidden_size: int = 32,
    seed: int = 0,
) -> Path:
    """A tiny BERT sequence classifier (an NLI model by default) with its own tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    folder = Path(folder)
    tokenizer = train_tokenizer(folder, kind="bert", model_max_length=128)
    id2label = dict(NLI_LABELS if id2label is None else id2label)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=2,
        intermediate_size=hidden_size * 2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        id2label=id2label,
        label2id={label: index for index, label in id2label.items()},
    )
    BertForSequenceClassification(config).save_pretrained(str(folder))
    return folder


def tiny_nli_folder(folder: Path, *, seed: int = 0) -> Path:
    """A tiny NLI model whose labels are ordered contradiction, neutral, entailment."""
    return tiny_bert_folder(folder, seed=seed)
