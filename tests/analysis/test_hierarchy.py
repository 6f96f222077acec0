"""The shipped label hierarchy (data/labels.json) is whole and consistent."""

from __future__ import annotations

import pytest

from visionloop.analysis.hierarchy import Hierarchy, load_hierarchy


@pytest.fixture(scope="module")
def h() -> Hierarchy:
    return load_hierarchy()


def test_every_class_has_a_label_and_every_parent_is_a_label(h: Hierarchy) -> None:
    assert len(h.imagenet) == 1000 and len(h.coco) == 80
    assert set(h.imagenet) | set(h.coco.values()) <= set(h.labels)
    for name, entry in h.labels.items():
        assert name not in entry.parents
        assert len(set(entry.parents)) == len(entry.parents)
        assert entry.categories, name
        for parent in entry.parents:  # the parents are closed: a parent's own parents are listed too
            assert set(h.labels[parent].parents) <= set(entry.parents), (name, parent)


@pytest.mark.parametrize(
    ("label", "ancestors", "category"),
    [
        ("Banana", ["Fruit", "Produce", "Food"], "Food and Beverage"),
        ("Granny Smith Apple", ["Fruit", "Food"], "Food and Beverage"),
        ("Broccoli", ["Vegetable", "Food"], "Food and Beverage"),
        ("Car", ["Motor Vehicle", "Vehicle", "Transportation"], "Vehicles and Automotive"),
        ("Sports Car", ["Car", "Vehicle", "Transportation"], "Vehicles and Automotive"),
        ("Golden Retriever", ["Dog", "Canine", "Mammal", "Animal", "Pet"], "Animals and Pets"),
        ("Tiger", ["Big Cat", "Feline", "Mammal", "Animal"], "Animals and Pets"),
        ("Volcano", ["Mountain", "Landscape", "Nature"], "Nature and Outdoors"),
        ("Computer Mouse", ["Electronics"], "Technology and Computing"),
    ],
)
def test_known_chains(h: Hierarchy, label: str, ancestors: list[str], category: str) -> None:
    entry = h.entry(label)
    assert set(ancestors) <= set(entry.parents)
    assert entry.parents[0] == ancestors[0]  # nearest first
    assert entry.categories == (category,)


def test_one_name_per_thing(h: Hierarchy) -> None:
    # a COCO class and the ImageNet class of the same WordNet synset share one name
    assert h.coco[74] == "Computer Mouse" and "Computer Mouse" in h.imagenet
    assert h.coco[52] == "Banana" and "Banana" in h.imagenet
    assert "Pet" not in h.entry("Tiger").parents  # Pet comes with Dog and Cat, not with every feline
    assert "Container" not in h.entry("Car").parents  # a WordNet link cut on purpose
    assert h.entry("Car").aliases[:2] == ("Auto", "Automobile")


def test_readable_names(h: Hierarchy) -> None:
    assert h.imagenet[:3] == ("Tench", "Goldfish", "Great White Shark")
    assert all(n[0].isupper() and "(" not in n and " or " not in n for n in h.imagenet)
