"""The bpcore hooks of bp-st: plain metadata only, so listing models imports no torch."""

from __future__ import annotations

from collections.abc import Callable

from bpcore.plugins import RegisterModel, hookimpl

TASK = "text-vectorisation"
# ISO 639-3 codes of the languages distiluse-base-multilingual-cased-v2 was trained on (its model card).
MULTILINGUAL_LANGUAGES = (
    "ara bul cat ces dan deu ell eng est fas fin fra glg guj heb hin hrv hun hye ind ita jpn kat kor kur "
    "lav lit mar mkd mon msa mya nld nob pol por ron rus slk slv spa sqi srp swe tha tur ukr urd vie zho"
).split()
SENTENCE_TRANSFORMERS_CREDIT = {"name": "Sentence Transformers", "url": "https://www.sbert.net"}


@hookimpl
def register_models(register: RegisterModel) -> None:
    register(
        name="all-minilm-l6-v2",
        factory="bp_st.bundled:load_all_minilm",
        tasks=[TASK],
        description="Small, fast English sentence vectoriser (all-MiniLM-L6-v2), bundled so it works offline.",
        aliases={"english-small": [TASK]},
        finetunable=[TASK],
        default_for=[TASK],
        init_kwargs={"max_length": 256},
        details={
            "num_parameters": 22_713_216,
            "max_text_length": 256,
            "vector_size": 384,
            "languages": ["eng"],
            "credits": [
                {"name": "Microsoft MiniLM", "url": "https://github.com/microsoft/unilm/tree/master/minilm"},
                SENTENCE_TRANSFORMERS_CREDIT,
            ],
        },
    )
    register(
        name="msmarco-distilroberta-base-v2",
        factory="bp_st.model:STModel",
        tasks=[TASK],
        description="English DistilRoBERTa vectoriser trained on MS MARCO passages, good for semantic search.",
        aliases={"english-base": [TASK], "english": [TASK]},
        finetunable=[TASK],
        init_kwargs={"model_path": "sentence-transformers/msmarco-distilroberta-base-v2", "max_length": 512},
        details={
            "num_parameters": 82_118_400,
            "max_text_length": 512,
            "vector_size": 768,
            "languages": ["eng"],
            "credits": [
                {"name": "Microsoft MS MARCO", "url": "https://microsoft.github.io/msmarco/"},
                {"name": "Hugging Face DistilRoBERTa", "url": "https://huggingface.co/distilroberta-base"},
                SENTENCE_TRANSFORMERS_CREDIT,
            ],
        },
    )
    register(
        name="distiluse-base-multilingual-cased-v2",
        factory="bp_st.model:STModel",
        tasks=[TASK],
        description="Multilingual vectoriser (50+ languages), distilled from Multilingual Universal Sentence Encoder.",
        aliases={"multilingual-base": [TASK], "multilingual": [TASK]},
        finetunable=[TASK],
        init_kwargs={
            "model_path": "sentence-transformers/distiluse-base-multilingual-cased-v2",
            "max_length": 512,
        },
        details={
            "num_parameters": 135_127_808,
            "max_text_length": 512,
            "vector_size": 512,
            "languages": MULTILINGUAL_LANGUAGES,
            "credits": [
                {"name": "Google USE", "url": "https://arxiv.org/abs/1907.04307"},
                {
                    "name": "Hugging Face DistilBERT",
                    "url": "https://huggingface.co/distilbert-base-multilingual-cased",
                },
                SENTENCE_TRANSFORMERS_CREDIT,
            ],
        },
    )


@hookimpl
def register_module_aliases(register: Callable[[str, str], None]) -> None:
    """Spec 6.7: ``from bpcore.models.st_model.model import STModel``."""
    register("st_model", "bp_st.model")
    register("st_model.model", "bp_st.model")


@hookimpl
def register_folder_formats(register: Callable[..., None]) -> None:
    """A plain ``SentenceTransformer.save`` folder is a bp-st model (see :mod:`bp_st.folders`)."""
    from bp_st.folders import DESCRIPTION

    register(name="sentence-transformers", recognise="bp_st.folders:recognise", description=DESCRIPTION)
