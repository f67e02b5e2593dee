"""Image decoding (paths, PIL images, base64) and the helpers of bpcore.utils."""

from __future__ import annotations

import base64
import math

import pytest
import torch
from PIL import Image

import bpcore
from bpcore import images, utils


def pixels_of(image: Image.Image) -> bytes:
    return image.tobytes()


def test_path_pil_and_base64_decode_to_the_same_rgb_pixels(image_files):
    path = image_files["red"]
    from_path = images.load_image(str(path))
    pil = Image.open(path)
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    for other in (
        images.load_image(pil),
        images.load_image(encoded),
        images.load_image(f"data:image/png;base64,{encoded}"),
        images.load_image(path.as_posix()),
    ):
        assert other.mode == "RGB" and other.size == (16, 16)
        assert pixels_of(other) == pixels_of(from_path)
    assert from_path.mode == "RGB"
    assert from_path.getpixel((3, 5)) == (255, 255, 255) and from_path.getpixel((0, 0)) == (220, 20, 20)


def test_other_modes_are_converted_to_rgb(tmp_path):
    grey = Image.new("L", (4, 4), 128)
    assert images.load_image(grey).getpixel((0, 0)) == (128, 128, 128)
    rgba = Image.new("RGBA", (4, 4), (10, 20, 30, 255))
    path = tmp_path / "rgba.png"
    rgba.save(path)
    assert images.load_image(str(path)).getpixel((1, 1)) == (10, 20, 30)


def test_utils_helpers_round_trip(image_files):
    pil = utils.path_to_img(str(image_files["blue"]))
    assert isinstance(pil, Image.Image)
    encoded = utils.img_to_base64(pil)
    assert isinstance(encoded, str)
    assert pixels_of(utils.base64_to_img(encoded)) == pixels_of(pil)

    many = utils.path_to_img([str(image_files["red"]), str(image_files["green"])])
    encoded_many = utils.img_to_base64(many)
    assert isinstance(encoded_many, list) and len(encoded_many) == 2
    decoded = utils.base64_to_img(encoded_many)
    assert [pixels_of(image) for image in decoded] == [pixels_of(image) for image in many]
    # JPEG is lossy but still decodes to an image of the same size.
    assert utils.base64_to_img(utils.img_to_base64(pil, format="JPEG")).size == pil.size


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(bpcore.InputError, match="no image file") as caught:
        images.load_image(str(tmp_path / "missing.png"), "input.image[0]")
    assert caught.value.field == "input.image[0]"
    with pytest.raises(bpcore.InputError, match="missing"):
        images.load_image("photos/missing.jpg")


def test_non_image_file_is_an_input_error(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not really a png")
    with pytest.raises(bpcore.InputError, match="not an image"):
        images.load_image(str(text))


def test_bad_base64_is_an_input_error():
    with pytest.raises(bpcore.InputError, match="base64"):
        images.load_image("@@@ not base64 @@@")
    not_an_image = base64.b64encode(b"just some bytes").decode()
    with pytest.raises(bpcore.InputError, match="not an image"):
        images.load_image(not_an_image)
    with pytest.raises(bpcore.InputError):
        images.load_image("")


def test_truncated_image_is_an_input_error(image_files, tmp_path):
    data = image_files["red"].read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(bpcore.InputError):
        images.load_image(str(truncated))


def test_list_helpers_name_the_bad_item(image_files, tmp_path):
    with pytest.raises(bpcore.InputError) as caught:
        images.load_images([str(image_files["red"]), "not base64 !!"], "input.image")
    assert caught.value.field == "input.image[1]"
    with pytest.raises(bpcore.InputError) as caught:
        utils.path_to_img([str(image_files["red"]), str(image_files["blue"]), str(tmp_path / "gone.png")])
    assert "[2]" in caught.value.field


def test_image_tasks_report_the_bad_item(tiny_plugin, image_files, tmp_path):
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    ic = bpcore.ImageClassification("tiny-image")
    with pytest.raises(bpcore.InputError) as caught:
        ic([str(image_files["red"]), str(not_an_image)], ["red", "blue"])
    assert caught.value.field == "input.image[1]"
    with pytest.raises(bpcore.InputError) as caught:
        bpcore.ImageVectorisation("tiny-image")([image_files["red"].as_posix(), "bad base64 !"])
    assert caught.value.field == "input.image[1]"


def test_image_tasks_accept_every_input_form(tiny_plugin, image_files, seeded):
    iv = bpcore.ImageVectorisation("tiny-image")
    path = image_files["green"]
    encoded = base64.b64encode(path.read_bytes()).decode()
    expected = iv(str(path))
    for other in (Image.open(path), encoded, f"data:image/png;base64,{encoded}"):
        assert iv(other) == pytest.approx(expected, abs=1e-6)


# -- cosine similarity --------------------------------------------------------------------------


def test_cosine_similarity_single_and_list():
    assert bpcore.cosine_similarity([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert bpcore.cosine_similarity([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert bpcore.cosine_similarity([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    value = bpcore.cosine_similarity([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    assert isinstance(value, float) and value == pytest.approx(10 / 14)
    many = bpcore.cosine_similarity([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert many == pytest.approx([1.0, 0.0, 1 / math.sqrt(2)])
    assert utils.cosine_similarity is bpcore.cosine_similarity


def test_cosine_similarity_with_tensors():
    first, second, third = torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0]), torch.tensor([-2.0, 1.0])
    assert bpcore.cosine_similarity(first, second) == pytest.approx(1.0)
    assert bpcore.cosine_similarity(first, [second, third]) == pytest.approx([1.0, 0.0], abs=1e-6)
    assert bpcore.cosine_similarity(first, torch.stack([second, third])) == pytest.approx(
        [1.0, 0.0], abs=1e-6
    )
    assert bpcore.cosine_similarity([1, 0], [1, 0]) == pytest.approx(1.0)  # integers too


def test_cosine_similarity_of_task_vectors(tiny_plugin, seeded):
    tv = bpcore.TextVectorisation("tiny-text")
    vectors = tv(["iPhone 12 128GB", "iPhone 12 128GB", "something else entirely"])
    assert bpcore.cosine_similarity(vectors[0], vectors[1]) == pytest.approx(1.0, abs=1e-5)
    both = bpcore.cosine_similarity(vectors[0], vectors[1:])
    assert len(both) == 2 and both[0] == pytest.approx(1.0, abs=1e-5) and both[1] < 0.99


def test_lazily_opened_images_finetune_as_they_answer(tiny_plugin, image_files, seeded):
    # Spec 3.4.6 passes PIL images; Image.open() is lazy, and checking one must not use up its file.
    opened = {name: Image.open(image_files[name]) for name in ("red", "green", "blue")}
    ic = bpcore.ImageClassification("tiny-image")
    names = list(opened) * 3
    history = ic.finetune(
        {"images": [opened[name] for name in names], "labels": names}, validation_split=0.0, epochs=15, seed=0
    )
    assert history.train_loss[-1] < history.train_loss[0]
    for name, image in opened.items():  # the caller's objects still work, and were learned
        answer = ic(image)
        assert max(answer, key=answer.get) == name
