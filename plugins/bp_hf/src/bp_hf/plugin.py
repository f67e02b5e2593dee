"""The bpcore hooks of bp-hf: plain metadata only, so listing models imports no torch or transformers.

A model's factory (``"module:attr"``) is imported only when the model is loaded.
"""

from __future__ import annotations

from collections.abc import Callable

from bpcore.plugins import RegisterClass, RegisterModel, hookimpl

QA = "qa"
EMOTION = "emotion"
SUMMARISATION = "summarisation"
TEXT_GENERATION = "text-generation"
TEXT_CLASSIFICATION = "text-classification"

HUGGING_FACE = {"name": "Hugging Face", "url": "https://huggingface.co/docs/transformers"}
GOOGLE_T5 = {"name": "Google T5", "url": "https://arxiv.org/abs/1910.10683"}
OPENAI_GPT2 = {"name": "OpenAI GPT-2", "url": "https://openai.com/blog/better-language-models/"}
#: The 15 languages XNLI covers (ISO 639-3), which xlm-roberta-large-xnli was finetuned on.
XNLI_LANGUAGES = "eng deu fra spa ell bul rus tur ara vie tha zho hin swa urd".split()
GPT2_NOTE = "Trained on unfiltered text from the internet: be wary of biases and 'facts' that sound true."

#: The base classes this plugin exports besides its factories (which are exported as they are).
BASE_CLASSES = {
    "HFModel": "bp_hf.base:HFModel",
    "HFTextGenerationModel": "bp_hf.base:HFTextGenerationModel",
    # No registered model builds it directly any more (t5-small/t5-base build its subclass T5), but
    # users do: a saved HFSeq2SeqTGModel must load without trust_code.
    "HFSeq2SeqTGModel": "bp_hf.generation:HFSeq2SeqTGModel",
}


def _gpt2(
    register: RegisterModel, name: str, hub_id: str, size: str, parameters: int, **extra: object
) -> None:
    register(
        name=name,
        factory="bp_hf.generation:HFCausalLMTGModel",
        tasks=[TEXT_GENERATION],
        finetunable=[TEXT_GENERATION],
        description=f"{size} version of OpenAI's GPT-2, a general-use English text generator (not finetuned further).",
        init_kwargs={"model_path": hub_id},
        details={
            "num_parameters": parameters,
            "max_text_length": 1024,
            "languages": ["eng"],
            "note": GPT2_NOTE,
            "credits": [OPENAI_GPT2, HUGGING_FACE],
        },
        **extra,
    )


def _t5(register: RegisterModel, name: str, hub_id: str, size: str, parameters: int) -> None:
    register(
        name=name,
        factory="bp_hf.generation:T5",
        tasks=[TEXT_GENERATION],
        finetunable=[TEXT_GENERATION],
        # Backprop's name for it (spec 5.3, 6.10: ``AutoModel.from_pretrained("t5_small")``).
        aliases={name.replace("-", "_"): []},
        description=(
            f"{size} version of Google's T5, a text-to-text generator that can be finetuned for almost any "
            "text task."
        ),
        init_kwargs={"model_path": hub_id},
        details={
            "num_parameters": parameters,
            "max_text_length": 512,
            "languages": ["eng"],
            "note": (
                "Prompt with T5's prefixes: 'summarize: <text>', 'translate English to German: <text>' "
                "(also French and Romanian)."
            ),
            "credits": [GOOGLE_T5, HUGGING_FACE],
        },
    )


def _nli(
    register: RegisterModel,
    name: str,
    hub_id: str,
    description: str,
    details: dict[str, object],
    **extra: object,
) -> None:
    register(
        name=name,
        factory="bp_hf.nli:HFNLIModel",
        tasks=[TEXT_CLASSIFICATION],
        description=description,
        init_kwargs={"model_path": hub_id},
        details={"zero_shot": True, **details},
        **extra,
    )


@hookimpl
def register_models(register: RegisterModel) -> None:
    """Declare bp-hf's models: T5 multitask, T5 and GPT-2 generators, NLI zero-shot classifiers, XLNet."""
    _multitask(register)
    _generators(register)
    _zero_shot_classifiers(register)
    _classifiers(register)


def _multitask(register: RegisterModel) -> None:
    register(
        name="t5-base-qa-summary-emotion",
        factory="bp_hf.t5_multitask:T5QASummaryEmotion",
        tasks=[QA, SUMMARISATION, EMOTION, TEXT_GENERATION],
        finetunable=[QA, SUMMARISATION, EMOTION, TEXT_GENERATION],
        default_for=[QA, SUMMARISATION, EMOTION],
        description=(
            "Base version of Google's T5, finetuned further for conversational Q&A, summarisation and "
            "emotion detection."
        ),
        init_kwargs={"model_path": "kiri-ai/t5-base-qa-summary-emotion"},
        details={
            "num_parameters": 222_903_552,
            "max_text_length": 512,
            "languages": ["eng"],
            "conversational_qa": True,
            "qa_score": "F1 79.5 on SQuAD 2.0, F1 70.6 on CoQA dev sets.",
            "emotions": (
                "neutral, admiration, approval, annoyance, gratitude, disapproval, amusement, curiosity, love, "
                "optimism, disappointment, joy, realization, anger, sadness, confusion, caring, excitement, "
                "surprise, disgust, desire, fear, remorse, embarrassment, nervousness, pride, relief, grief"
            ),
            "credits": [
                GOOGLE_T5,
                {"name": "Kiri AI", "url": "https://huggingface.co/kiri-ai"},
                HUGGING_FACE,
            ],
        },
    )


def _generators(register: RegisterModel) -> None:
    _t5(register, "t5-small", "google-t5/t5-small", "Small", 60_506_624)
    _t5(register, "t5-base", "google-t5/t5-base", "Base", 222_903_552)
    _gpt2(register, "distilgpt2", "distilbert/distilgpt2", "A distilled", 81_912_576)
    _gpt2(
        register,
        "gpt2-medium",
        "openai-community/gpt2-medium",
        "A medium",
        354_823_168,
        default_for=[TEXT_GENERATION],
        aliases={"english-base": [TEXT_GENERATION]},
    )
    _gpt2(register, "gpt2-large", "openai-community/gpt2-large", "A large", 774_030_080)


def _zero_shot_classifiers(register: RegisterModel) -> None:
    _nli(
        register,
        "bart-large-mnli",
        "facebook/bart-large-mnli",
        "Large version of Facebook AI's BART, finetuned on MultiNLI for zero-shot text classification.",
        {
            "num_parameters": 407_344_131,
            "max_text_length": 1024,
            "languages": ["eng"],
            "score": "Matched accuracy 89.9%, mismatched 90.01% on the MNLI test set.",
            "credits": [{"name": "Facebook AI", "url": "https://arxiv.org/abs/1910.13461"}, HUGGING_FACE],
        },
    )
    _nli(
        register,
        "deberta-base-mnli",
        "microsoft/deberta-base-mnli",
        "Base version of Microsoft's DeBERTa, finetuned on MultiNLI for zero-shot text classification.",
        {
            "num_parameters": 139_194_627,
            "max_text_length": 512,
            "languages": ["eng"],
            "score": "Matched accuracy 88.8% on the MNLI test set.",
            "credits": [{"name": "Microsoft", "url": "https://arxiv.org/abs/2006.03654"}, HUGGING_FACE],
        },
        default_for=[TEXT_CLASSIFICATION],
        aliases={"english-base": [TEXT_CLASSIFICATION]},
    )
    _nli(
        register,
        "xlmr-large-xnli",
        "joeddav/xlm-roberta-large-xnli",
        "Facebook AI's multilingual XLM-RoBERTa, finetuned on XNLI for multilingual zero-shot text classification.",
        {
            "num_parameters": 559_893_507,
            "max_text_length": 512,
            "languages": XNLI_LANGUAGES,
            "note": "Finetuned on 15 languages; the base model was trained on 100.",
            "credits": [
                {"name": "Facebook AI", "url": "https://arxiv.org/abs/1911.02116"},
                {
                    "name": "Joe Davison @ Hugging Face",
                    "url": "https://huggingface.co/joeddav/xlm-roberta-large-xnli",
                },
            ],
        },
        aliases={"multilingual-base": [TEXT_CLASSIFICATION]},
    )


def _classifiers(register: RegisterModel) -> None:
    register(
        name="xlnet-base-cased",
        factory="bp_hf.sequence_classification:HFSeqTCModel",
        tasks=[TEXT_CLASSIFICATION],
        finetunable=[TEXT_CLASSIFICATION],
        # Spec 2.3.2: TextClassification().finetune(params) starts from it (the zero-shot default cannot be finetuned).
        default_finetune_for=[TEXT_CLASSIFICATION],
        description="XLNet (base, cased), to finetune as a text classifier on your own labels.",
        init_kwargs={"model_path": "xlnet/xlnet-base-cased"},
        details={
            "num_parameters": 117_310_466,
            "max_text_length": 512,
            "languages": ["eng"],
            "zero_shot": False,
            "credits": [
                {"name": "Google Brain / CMU XLNet", "url": "https://arxiv.org/abs/1906.08237"},
                HUGGING_FACE,
            ],
        },
    )


@hookimpl
def register_model_classes(register: RegisterClass) -> None:
    """Export bp-hf's base classes as ``bpcore.models.<name>`` (the factories are exported already)."""
    for name, target in BASE_CLASSES.items():
        register(name, target)


#: Backprop's module paths (spec chapter 6), each a package with a ``model`` submodule.
SPEC_MODULES = {
    "hf_causallm_tg_model": "bp_hf.generation",
    "hf_seq2seq_tg_model": "bp_hf.generation",
    "hf_nli_model": "bp_hf.nli",
    "hf_seq_tc_model": "bp_hf.sequence_classification",
    "t5_qa_summary_emotion": "bp_hf.t5_multitask",
}


@hookimpl
def register_module_aliases(register: Callable[[str, str], None]) -> None:
    """Spec 6.3-6.8: ``bpcore.models.hf_nli_model.model`` is ``bp_hf.nli`` (and so on)."""
    for path, module in SPEC_MODULES.items():
        register(path, module)
        register(f"{path}.model", module)


@hookimpl
def register_folder_formats(register: Callable[..., None]) -> None:
    """A plain ``save_pretrained`` folder is a bp-hf model (see :mod:`bp_hf.folders`)."""
    from bp_hf.folders import DESCRIPTION

    register(name="transformers", recognise="bp_hf.folders:recognise", description=DESCRIPTION)
