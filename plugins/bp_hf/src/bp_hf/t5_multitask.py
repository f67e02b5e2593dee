"""T5QASummaryEmotion: one T5 for qa, summarisation, emotion and text-generation, by task prefix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from bp_hf.generation import HFSeq2SeqTGModel
from bpcore.plugins import EMOTION, QA, SUMMARISATION, TEXT_GENERATION, InputError

QAPairs = Sequence[Sequence[str]]


def qa_input(question: str, context: str, prev_qa: QAPairs = ()) -> str:
    """``"q: <q1> a: <a1> ... q: <question> c: <context>"``, the T5 multitask QA format."""
    parts = [f"q: {previous} a: {answer}" for previous, answer in prev_qa]
    return " ".join([*parts, f"q: {question}", f"c: {context}"])


class T5QASummaryEmotion(HFSeq2SeqTGModel):
    """A T5 finetuned for ``qa``, ``summarisation`` and ``emotion``; it also does ``text-generation``.

    Each task is told apart by how its input is written:

    - ``emotion``: ``"emotion: <text>"`` → comma-separated emotions (greedy, up to 200 tokens).
    - ``summarisation``: ``"summarise: <text>"`` → a summary (4 beams, no repeated 3-grams, up to
      200 tokens).
    - ``qa``: ``"q: <q1> a: <a1> q: <q2> a: <a2> q: <question> c: <context>"``, the previous
      question/answer pairs (``prev_qa``) first, so a follow-up question can resolve "it"
      (greedy, up to 96 tokens). A context too long for the model's input limit is split into
      overlapping windows (a quarter of a window overlaps the next); each window is answered
      and the answer with the highest mean token log-probability wins.
    - ``text-generation``: the text as it is, with spec 3.4.8's keywords.

    Finetuning for each task writes its inputs the same way (QA inputs are truncated to
    ``max_input_length`` there, not windowed).

    Example::

        import bpcore
        from bp_hf import T5QASummaryEmotion

        model = T5QASummaryEmotion("kiri-ai/t5-base-qa-summary-emotion")
        bpcore.QA(model)("Where does Sally live?", "Sally lives in London.")      # "London"
        bpcore.Emotion(model)("I really like what you did there")                # "approval"
    """

    task_prefixes: ClassVar[dict[str, str]] = {
        TEXT_GENERATION: "",
        EMOTION: "emotion: ",
        SUMMARISATION: "summarise: ",
        QA: "",
    }
    task_generation_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        EMOTION: {"max_new_tokens": 200},
        SUMMARISATION: {
            "max_new_tokens": 200,
            "num_beams": 4,
            "no_repeat_ngram_size": 3,
            "early_stopping": True,
        },
        QA: {"max_new_tokens": 96},
    }
    #: The share of a context window that the next window repeats.
    window_overlap = 0.25

    default_model_path = "kiri-ai/t5-base-qa-summary-emotion"
    default_tasks = (TEXT_GENERATION, EMOTION, SUMMARISATION, QA)

    def __call__(self, task_input: Mapping[str, Any], task: str = TEXT_GENERATION) -> list[Any]:
        """One answer per item for ``qa``, ``emotion``, ``summarisation`` or ``text-generation``."""
        if task == QA:
            self.check_task(task)
            return self.answer(task_input["question"], task_input["context"], task_input.get("prev_qa"))
        return super().__call__(task_input, task)

    # -- the spec's helpers (6.8.1): thin forms of what __call__ does -----------------------
    def qa(self, question: str | Sequence[str], context: str | Sequence[str], prev_qa: Any = ()) -> Any:
        """Answer one ``question`` from its ``context`` (strings), or lists of both (``prev_qa`` then one list per question).

        ``prev_qa`` holds the ``(question, answer)`` pairs asked before, for a conversation.

        Example: ``model.qa("Where does Sally live?", "Sally lives in London.")`` gives ``"London"``.
        """
        if isinstance(question, str):
            return self.answer([question], [str(context)], [list(prev_qa or [])])[0]
        return self.answer(list(question), list(context), list(prev_qa) if prev_qa else None)

    def process_qa(self, question: str, context: str, prev_qa: QAPairs = ()) -> str:
        """The model's input for a ``question``: ``"q: <q1> a: <a1> ... q: <question> c: <context>"``.

        ``prev_qa`` are the earlier ``(question, answer)`` pairs, ``context`` the text to answer from.
        """
        return qa_input(question, context, prev_qa)

    def emote_or_summary(self, text: str | Sequence[str], task_prefix: str, **gen_kwargs: Any) -> Any:
        """The emotions (``task_prefix="emotion"``) or summary (``"summarise"``) of a ``text`` or a list of texts.

        ``gen_kwargs`` are spec 3.4.8's generation keywords. Example:
        ``model.emote_or_summary("I love it", "emotion")`` gives ``"love"``.
        """
        task = {"emotion": EMOTION, "summarise": SUMMARISATION, "summarisation": SUMMARISATION}.get(
            task_prefix
        )
        if task is None:
            raise InputError(f"must be 'emotion' or 'summarise', got {task_prefix!r}", field="task_prefix")
        texts = [text] if isinstance(text, str) else list(text)
        answers = self.generate(
            self.inputs_for({"text": texts}, task), defaults=self.task_generation_defaults[task], **gen_kwargs
        )
        return answers[0] if isinstance(text, str) else answers

    # -- question answering ---------------------------------------------------------------
    def answer(
        self, questions: Sequence[str], contexts: Sequence[str], prev_qas: Sequence[QAPairs] | None = None
    ) -> list[str]:
        """Answer each of ``questions`` from its item of ``contexts``, windowing contexts longer than the input limit.

        ``prev_qas`` holds one list of earlier ``(question, answer)`` pairs per question.
        """
        prev_qas = prev_qas or [[] for _ in questions]
        owners, inputs = [], []
        for index, (question, context, prev_qa) in enumerate(zip(questions, contexts, prev_qas)):
            for window in self.context_windows(question, context, prev_qa, index):
                owners.append(index)
                inputs.append(qa_input(question, window, prev_qa))
        found = self.generate(inputs, defaults=self.task_generation_defaults[QA], with_scores=True)
        best: dict[int, tuple[str, float]] = {}
        for owner, (text, score) in zip(owners, found):
            if owner not in best or score > best[owner][1]:
                best[owner] = (text, score)
        return [best[index][0] for index in range(len(questions))]

    def context_windows(self, question: str, context: str, prev_qa: QAPairs, index: int = 0) -> list[str]:
        """``context`` whole if it fits the model's input with the ``question``, else overlapping windows of it.

        ``prev_qa`` are the earlier pairs that share the input; ``index`` is the question's place
        in its batch, named in errors.
        """
        limit = self.max_input_length
        prefix = self.encode([qa_input(question, "", prev_qa)], truncation=False)[0]["input_ids"]
        # A few tokens spare: a window's text can tokenise a little longer on its own.
        room = limit - len(prefix) - 4
        spans = self.token_spans(context)
        if len(prefix) + len(spans) <= limit:
            return [context]
        if room < 8:
            raise InputError(
                f"the question and previous answers take {len(prefix)} of the model's {limit} input tokens, "
                "leaving no room for the context",
                field=f"input.question[{index}]",
            )
        stride = max(1, room - int(room * self.window_overlap))
        windows = []
        for start in range(0, len(spans), stride):
            end = min(start + room, len(spans))
            windows.append(context[spans[start][0] : spans[end - 1][1]])
            if end == len(spans):
                break
        return windows

    # -- finetuning -----------------------------------------------------------------------
    def training_input(self, params: Mapping[str, Any], task: str) -> str:
        if task == QA:
            return qa_input(params["question"], params["context"], params.get("prev_qa") or [])
        return super().training_input(params, task)
