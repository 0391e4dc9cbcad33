"""Product catalogue for the sample data generator.

The catalogue is the same for every seed (one fictional shop), so datasets generated with different
seeds describe the same products. Products are stored sorted by (category, price) so a basket can pick
"the product of this category whose price is closest to X" with one vectorised searchsorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# category -> (price range in whole currency units, product nouns, adjectives)
_CATEGORIES: dict[str, tuple[tuple[float, float], tuple[str, ...], tuple[str, ...]]] = {
    "Apparel": (
        (15, 120),
        ("T-Shirt", "Hoodie", "Jeans", "Dress", "Jacket"),
        ("Classic", "Organic Cotton", "Slim Fit", "Everyday"),
    ),
    "Footwear": (
        (40, 180),
        ("Sneakers", "Boots", "Sandals", "Loafers", "Runners"),
        ("Leather", "Trail", "Canvas", "Lightweight"),
    ),
    "Accessories": (
        (10, 90),
        ("Scarf", "Belt", "Wallet", "Cap", "Sunglasses"),
        ("Wool", "Vegan Leather", "Striped", "Minimal"),
    ),
    "Beauty": (
        (6, 60),
        ("Face Serum", "Lip Balm", "Shampoo", "Hand Cream", "Perfume"),
        ("Hydrating", "Fragrance-Free", "Citrus", "Night"),
    ),
    "Home": (
        (12, 250),
        ("Throw Blanket", "Table Lamp", "Vase", "Cushion", "Rug"),
        ("Linen", "Ceramic", "Nordic", "Handwoven"),
    ),
    "Kitchen": (
        (8, 200),
        ("Chef Knife", "Frying Pan", "Mug Set", "Cutting Board", "Coffee Grinder"),
        ("Stainless", "Cast Iron", "Bamboo", "Enamel"),
    ),
    "Electronics": (
        (20, 600),
        ("Headphones", "Speaker", "Charger", "Smartwatch", "Keyboard"),
        ("Wireless", "Portable", "Noise-Cancelling", "Compact"),
    ),
    "Books": (
        (8, 40),
        ("Cookbook", "Novel", "Travel Guide", "Notebook", "Atlas"),
        ("Illustrated", "Pocket", "Hardcover", "Collector's"),
    ),
    "Sports": (
        (10, 300),
        ("Yoga Mat", "Water Bottle", "Dumbbells", "Tennis Racket", "Backpack"),
        ("Pro", "Insulated", "Adjustable", "All-Weather"),
    ),
    "Toys": (
        (8, 120),
        ("Puzzle", "Building Set", "Plush Bear", "Board Game", "Kite"),
        ("Wooden", "Deluxe", "Junior", "Classic"),
    ),
}
# Relative popularity of the categories (Zipf-like skew, in the order above).
_CATEGORY_WEIGHTS = 1.0 / np.arange(1, len(_CATEGORIES) + 1) ** 0.8
_CATALOGUE_SEED = 20240601


@dataclass(frozen=True)
class Catalogue:
    product_id: np.ndarray  # str, sorted by (category, price)
    name: np.ndarray  # str
    category: np.ndarray  # int category index per product
    price_cents: np.ndarray  # int64
    category_names: tuple[str, ...]
    category_start: np.ndarray  # first product index of each category
    category_size: np.ndarray  # products per category
    category_p: np.ndarray  # category popularity (sums to 1)
    popularity_order: np.ndarray  # per category, product offsets from most to least popular (flattened)
    search_key: np.ndarray  # category * 100 + log(price): sorted, for price-closest lookups

    @property
    def size(self) -> int:
        return len(self.product_id)


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """Build the shop's 200 products (10 categories x 20), identical on every call."""
    rng = np.random.default_rng(_CATALOGUE_SEED)
    names: list[str] = []
    cats: list[int] = []
    prices: list[int] = []
    for c, (_, ((low, high), nouns, adjectives)) in enumerate(_CATEGORIES.items()):
        combos = [f"{adj} {noun}" for noun in nouns for adj in adjectives]
        raw = np.exp(rng.uniform(np.log(low), np.log(high), size=len(combos)))
        # Shop prices end in .99 or .50 (psychological pricing), never below 1.
        ends = rng.choice(np.array([99, 50]), size=len(combos), p=[0.8, 0.2])
        cents = np.maximum(np.floor(raw).astype(np.int64), 1) * 100 - 100 + ends
        order = np.argsort(cents, kind="stable")
        names.extend(combos[i] for i in order)
        prices.extend(int(cents[i]) for i in order)
        cats.extend([c] * len(combos))
    category = np.array(cats, dtype=np.int64)
    price_cents = np.array(prices, dtype=np.int64)
    n_categories = len(_CATEGORIES)
    size = np.bincount(category, minlength=n_categories)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    # A fixed random popularity ranking inside each category, independent of price.
    popularity = np.concatenate([rng.permutation(int(s)) for s in size])
    # Ids are not in price order, like a real shop's SKUs.
    id_numbers = rng.permutation(len(names)) + 1001
    return Catalogue(
        product_id=np.array([f"P{n}" for n in id_numbers]),
        name=np.array(names),
        category=category,
        price_cents=price_cents,
        category_names=tuple(_CATEGORIES),
        category_start=start,
        category_size=size,
        category_p=_CATEGORY_WEIGHTS / _CATEGORY_WEIGHTS.sum(),
        popularity_order=popularity,
        search_key=category * 100.0 + np.log(price_cents / 100.0),
    )


def pick_products(
    rng: np.random.Generator, category: np.ndarray, target_cents: np.ndarray, price_fit_share: float = 0.5
) -> np.ndarray:
    """Product index per item: either the product of `category` priced closest to the target
    (with a little jitter), or a popularity-skewed pick from the category."""
    cat = catalogue()
    start = cat.category_start[category]
    size = cat.category_size[category]
    key = category * 100.0 + np.log(np.maximum(target_cents, 100) / 100.0)
    by_price = np.searchsorted(cat.search_key, key) + rng.integers(-1, 2, size=len(key))
    by_price = np.clip(by_price, start, start + size - 1)
    # u**2.5 concentrates picks on the first (most popular) ranks.
    rank = np.minimum((size * rng.random(len(key)) ** 2.5).astype(np.int64), size - 1)
    by_popularity = start + cat.popularity_order[start + rank]
    return np.where(rng.random(len(key)) < price_fit_share, by_price, by_popularity)
