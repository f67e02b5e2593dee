"""Each task's finetuning ``params``, keyed as in the spec."""

from __future__ import annotations

import attrs

from bpcore.errors import InputError
from bpcore.schemas.checks import check_groups, check_non_blank, check_parallel, check_scores
from bpcore.schemas.converter import Group, ImageRef


@attrs.frozen
class QAParams:
    questions: list[str]
    answers: list[str]
    contexts: list[str]
    prev_qas: list[list[tuple[str, str]]] | None = None

    def check(self, root: str) -> None:
        check_parallel(self, root, ("questions", "answers", "contexts", "prev_qas"))
        check_non_blank(self, root, ("questions", "answers", "contexts"))


@attrs.frozen
class TextToTextParams:
    """Params of emotion, summarisation and text-generation."""

    input_text: list[str]
    output_text: list[str]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("input_text", "output_text"))
        check_non_blank(self, root, ("input_text", "output_text"))


@attrs.frozen
class TextClassificationParams:
    texts: list[str]
    labels: list[str]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("texts", "labels"))
        check_non_blank(self, root, ("texts", "labels"))


@attrs.frozen
class MultiLabelTextClassificationParams:
    texts: list[str]
    labels: list[list[str]]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("texts", "labels"))
        check_non_blank(self, root, ("texts",))


@attrs.frozen
class TextPairParams:
    texts1: list[str]
    texts2: list[str]
    similarity_scores: list[float]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("texts1", "texts2", "similarity_scores"))
        check_non_blank(self, root, ("texts1", "texts2"))
        check_scores(self.similarity_scores, root, "similarity_scores")


@attrs.frozen
class TextGroupParams:
    texts: list[str]
    groups: list[Group]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("texts", "groups"))
        check_non_blank(self, root, ("texts",))
        check_groups(self.groups, root)


@attrs.frozen
class ImageClassificationParams:
    images: list[ImageRef]
    labels: list[str]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("images", "labels"))
        check_non_blank(self, root, ("labels",))


@attrs.frozen
class MultiLabelImageClassificationParams:
    images: list[ImageRef]
    labels: list[list[str]]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("images", "labels"))
        if not any(self.labels):
            raise InputError("no image has any label", field=f"{root}.labels")


@attrs.frozen
class ImagePairParams:
    imgs1: list[ImageRef]
    imgs2: list[ImageRef]
    similarity_scores: list[float]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("imgs1", "imgs2", "similarity_scores"))
        check_scores(self.similarity_scores, root, "similarity_scores")


@attrs.frozen
class ImageGroupParams:
    images: list[ImageRef]
    groups: list[Group]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("images", "groups"))
        check_groups(self.groups, root)


@attrs.frozen
class ImageTextGroupParams:
    images: list[ImageRef]
    texts: list[str]
    groups: list[Group]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("images", "texts", "groups"))
        check_groups(self.groups, root)


@attrs.frozen
class ImageTextPairParams:
    imgs1: list[ImageRef]
    imgs2: list[ImageRef]
    texts1: list[str]
    texts2: list[str]
    similarity_scores: list[float]

    def check(self, root: str) -> None:
        check_parallel(self, root, ("imgs1", "imgs2", "texts1", "texts2", "similarity_scores"))
        check_scores(self.similarity_scores, root, "similarity_scores")
