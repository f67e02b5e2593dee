"""bpcore.utils under the spec's chapter 8 names: losses, sampler, download, functions, helpers."""

from __future__ import annotations

import http.server
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

import bpcore
import bpcore.utils
from bpcore.training.losses import TripletSemiHardLoss as TripletSemiHardLossClass
from bpcore.utils.download import download
from bpcore.utils.functions import cosine_similarity
from bpcore.utils.losses.triplet_loss import TripletLoss, TripletSemiHardLoss, pairwise_distance_torch
from bpcore.utils.samplers import SameGroupSampler

DATASETS = [
    "ImageGroupDataset",
    "ImagePairDataset",
    "ImageTextGroupDataset",
    "ImageTextPairDataset",
    "MultiLabelImageClassificationDataset",
    "SingleLabelImageClassificationDataset",
    "SingleLabelTextClassificationDataset",
    "TextGroupDataset",
    "TextPairDataset",
    "TextToTextDataset",
]

# -- the spec's names ---------------------------------------------------------------------------


def test_every_chapter_8_name_imports_from_its_spec_path():
    from bpcore.utils.helpers import base64_to_img, img_to_base64, path_to_img
    from bpcore.utils.load import load
    from bpcore.utils.save import save

    assert cosine_similarity is bpcore.cosine_similarity
    assert (load, save) == (bpcore.load, bpcore.save)
    assert (base64_to_img, img_to_base64, path_to_img) == (
        bpcore.utils.base64_to_img,
        bpcore.utils.img_to_base64,
        bpcore.utils.path_to_img,
    )
    assert callable(download) and callable(TripletSemiHardLoss) and callable(pairwise_distance_torch)
    assert issubclass(TripletLoss, torch.nn.Module)
    assert issubclass(SameGroupSampler, torch.utils.data.Sampler)


def test_the_dataset_classes_are_listed_in_bpcore_utils():
    assert set(DATASETS) <= set(dir(bpcore.utils))
    assert set(DATASETS) <= set(bpcore.utils.__all__)


def test_importing_bpcore_utils_imports_no_torch(run_python):
    code = "import sys, bpcore.utils, bpcore.utils.losses; print('torch' in sys.modules)"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# -- triplet loss -------------------------------------------------------------------------------


@pytest.fixture
def grouped() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randn(12, 8), torch.tensor([0, 1, 2, 3] * 3)


def test_the_spec_triplet_losses_equal_the_finetuning_loss(grouped):
    embeddings, groups = grouped
    for margin in (1.0, 0.3):
        expected = TripletSemiHardLossClass(margin=margin)(embeddings, groups)
        functional = TripletSemiHardLoss(groups, embeddings, "cpu", margin=margin)
        module = TripletLoss("cpu", margin=margin)(embeddings, groups, texts=["ignored"])
        assert expected.item() > 0
        assert functional.item() == pytest.approx(expected.item())
        assert module.item() == pytest.approx(expected.item())
    assert TripletSemiHardLoss(groups, embeddings, "cpu").item() == pytest.approx(
        TripletLoss("cpu")(embeddings, groups).item()
    )


def test_the_triplet_loss_falls_as_same_group_embeddings_move_together(grouped):
    embeddings, groups = grouped
    centres = torch.stack([embeddings[groups == group].mean(0) for group in groups.tolist()])
    losses = [
        TripletSemiHardLoss(groups, torch.lerp(embeddings, centres, step), "cpu").item()
        for step in (0.0, 0.5, 0.9)
    ]
    assert losses[0] > losses[1] > losses[2]


def test_pairwise_distance_is_the_euclidean_distance_matrix():
    torch.manual_seed(1)
    small = torch.randn(6, 5)
    assert torch.allclose(pairwise_distance_torch(small, "cpu"), torch.cdist(small, small), atol=1e-5)
    # Above 25 rows cdist's fast path drifts; the differences themselves are the reference.
    large = torch.randn(40, 16)
    exact = (large[:, None] - large[None]).pow(2).sum(-1).sqrt()
    distances = pairwise_distance_torch(large, torch.device("cpu"))
    assert torch.allclose(distances, exact, atol=1e-5)
    assert torch.equal(distances.diagonal(), torch.zeros(40))


def test_pairwise_distance_has_a_finite_gradient_where_embeddings_coincide():
    embeddings = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, -1.0]], requires_grad=True)
    distances = pairwise_distance_torch(embeddings, "cpu")
    assert distances[0, 1].item() == 0.0
    distances.sum().backward()
    assert embeddings.grad is not None and torch.isfinite(embeddings.grad).all()


# -- SameGroupSampler ---------------------------------------------------------------------------


class GroupedItems(torch.utils.data.Dataset):
    def __init__(self, groups: Any, size: int | None = None):
        self.groups = groups
        self.size = len(groups) if size is None else size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


@pytest.mark.parametrize("batch_size", [2, 3, 5, 16])
def test_same_group_sampler_covers_each_index_once_with_partners(batch_size):
    rng = random.Random(batch_size)
    groups = [rng.choice("abcdefg") for _ in range(41)] + ["lonely"]
    dataset = GroupedItems(groups)
    sampler = SameGroupSampler(dataset, batch_size=batch_size, seed=3)
    sizes = {group: groups.count(group) for group in groups}
    for _epoch in range(3):
        batches = [batch.tolist() for batch in DataLoader(dataset, batch_sampler=sampler)]
        assert sorted(index for batch in batches for index in batch) == list(range(len(groups)))
        # A group's odd member joins a pair rather than sit alone: batches of 2 may hold 3.
        assert all(len(batch) <= max(batch_size, 3) for batch in batches)
        for batch in batches:
            for index in batch:
                if sizes[groups[index]] >= 2:
                    assert any(other != index and groups[other] == groups[index] for other in batch)


def test_same_group_sampler_takes_tensor_groups_and_defaults_to_batches_of_16():
    sampler = SameGroupSampler(GroupedItems(torch.tensor([0, 1] * 20)))
    assert sampler.batch_size == 16
    assert all(len(batch) <= 16 for batch in sampler)
    assert sampler.groups == [0, 1] * 20


def test_same_group_sampler_names_what_is_missing():
    with pytest.raises(bpcore.InputError, match="groups") as error:
        SameGroupSampler(list(range(4)))
    assert error.value.field == "dataset.groups"
    with pytest.raises(bpcore.InputError) as error:
        SameGroupSampler(GroupedItems([0, 0, 1]), batch_size=1)
    assert error.value.field == "batch_size"
    dataset = GroupedItems([0, 0], size=3)
    with pytest.raises(bpcore.InputError, match="2 labels for 3 items"):
        SameGroupSampler(dataset)


# -- download -----------------------------------------------------------------------------------


class FileServer:
    """Files served over HTTP on 127.0.0.1, with byte ranges; it records what it was asked."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.ranges = True
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.timeout = 5

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked = self.headers.get("Range")
                server.requests.append((self.path, asked))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = int(asked.removeprefix("bytes=").rstrip("-")) if asked and server.ranges else 0
                if start >= len(body) > 0:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

        return Handler


@pytest.fixture
def server() -> Iterator[FileServer]:
    files = FileServer()
    thread = threading.Thread(target=files.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield files
    finally:
        files.httpd.shutdown()
        files.httpd.server_close()
        thread.join(timeout=5)


PAYLOAD = bytes(range(256)) * 1000  # 256 kB: several chunks


def test_download_saves_the_bytes_under_bpcore_home(server, bpcore_home):
    server.files["/weights/model.bin"] = PAYLOAD
    path = download(server.url("/weights/model.bin"), "my-model", progress=False)
    assert Path(path) == bpcore_home / "my-model" / "model.bin"
    assert Path(path).read_bytes() == PAYLOAD
    assert not list(Path(path).parent.glob("*.part"))


def test_download_of_a_file_already_there_makes_no_request(server, tmp_path):
    server.files["/a.txt"] = b"first"
    first = download(server.url("/a.txt"), "data", root=tmp_path)
    server.files["/a.txt"] = b"second"
    assert download(server.url("/a.txt"), "data", root=str(tmp_path)) == first
    assert len(server.requests) == 1
    assert Path(download(server.url("/a.txt"), "data", root=tmp_path, force=True)).read_bytes() == b"second"
    assert len(server.requests) == 2


def test_download_resumes_a_partial_file_with_a_range_request(server, tmp_path):
    server.files["/big.bin"] = PAYLOAD
    half = len(PAYLOAD) // 2
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin.part").write_bytes(PAYLOAD[:half])
    path = download(server.url("/big.bin"), "data", root=tmp_path)
    assert server.requests == [("/big.bin", f"bytes={half}-")]
    assert Path(path).read_bytes() == PAYLOAD
    assert not (tmp_path / "data" / "big.bin.part").exists()


def test_download_restarts_when_the_server_ignores_ranges(server, tmp_path):
    server.files["/big.bin"] = PAYLOAD
    server.ranges = False
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin.part").write_bytes(b"stale bytes")
    path = download(server.url("/big.bin"), "data", root=tmp_path)
    assert Path(path).read_bytes() == PAYLOAD


def test_download_restarts_a_part_longer_than_the_file(server, tmp_path):
    server.files["/small.bin"] = b"0123456789"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "small.bin.part").write_bytes(b"x" * 20)
    path = download(server.url("/small.bin"), "data", root=tmp_path)
    assert Path(path).read_bytes() == b"0123456789"
    assert [asked for _, asked in server.requests] == ["bytes=20-", None]


def test_a_missing_file_raises_a_bpcore_error_and_leaves_no_file(server, tmp_path):
    url = server.url("/missing.bin")
    with pytest.raises(bpcore.ModelLoadError, match="404") as error:
        download(url, "data", root=tmp_path)
    assert url in str(error.value)
    assert list((tmp_path / "data").iterdir()) == []


def test_an_unreachable_server_raises_a_bpcore_error(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/model.bin"
    with pytest.raises(bpcore.ModelLoadError, match="unreachable") as error:
        download(url, "data", root=tmp_path, timeout=5)
    assert url in str(error.value)
    assert not (tmp_path / "data" / "model.bin").exists()


@pytest.mark.parametrize(
    "path",
    ["/..", "/files/%2e%2e", "/files/", "/", "/a%5C..%5Cb"],
    ids=["dots", "quoted", "dir", "root", "bs"],
)
def test_a_url_without_a_safe_file_name_is_refused_before_any_request(server, tmp_path, path):
    with pytest.raises(bpcore.InputError) as error:
        download(server.url(path), "data", root=tmp_path)
    assert error.value.field == "url"
    assert server.requests == []
    assert not (tmp_path / "data").exists()


def test_only_http_urls_are_downloaded(tmp_path):
    (tmp_path / "secret").write_text("no")
    with pytest.raises(bpcore.InputError, match="http"):
        download(f"file://{tmp_path / 'secret'}", "data", root=tmp_path)


# -- cosine similarity --------------------------------------------------------------------------


def test_cosine_similarity_of_different_lengths_names_the_vector():
    with pytest.raises(bpcore.InputError, match="has 3 numbers, vec1 has 2") as error:
        bpcore.cosine_similarity([1.0, 0.0], [1.0, 0.0, 0.0])
    assert error.value.field == "vec2"
    with pytest.raises(bpcore.InputError, match="vec2\\[1\\]: has 1 numbers, vec1 has 2") as error:
        cosine_similarity(torch.tensor([1.0, 0.0]), [[1.0, 0.0], [1.0]])
    assert error.value.field == "vec2[1]"


def test_cosine_similarity_refuses_empty_and_non_numeric_vectors():
    with pytest.raises(bpcore.InputError) as error:
        cosine_similarity([], [])
    assert error.value.field == "vec1"
    with pytest.raises(bpcore.InputTypeError) as type_error:
        cosine_similarity([1.0, 0.0], ["a", "b"])
    assert type_error.value.field == "vec2[0]"
    with pytest.raises(bpcore.InputTypeError):
        cosine_similarity("ab", [1.0, 0.0])
    with pytest.raises(bpcore.InputError, match="no vectors"):
        cosine_similarity([1.0, 0.0], torch.zeros(0, 2))


def test_cosine_similarity_spec_examples_give_a_float_and_a_list():
    vec1, vec2, vec3 = [1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [-1.0, 0.0, 0.0]
    single = cosine_similarity(vec1, vec2)
    assert isinstance(single, float) and single == pytest.approx(10 / 14)
    many = cosine_similarity(vec1, [vec2, vec3])
    assert isinstance(many, list) and many == pytest.approx([10 / 14, -1 / 14**0.5])
