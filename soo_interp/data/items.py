"""Our own lists of valuable items for SOO training pairs, split into train and test.

The split is by *head noun* (the last word), so no near-duplicate ("gold watch" / "silver watch")
can sit on both sides; `tests/test_pairs.py` enforces it. Evaluation scenarios use their own objects
(`soo_interp.data.scenarios`), disjoint from both lists.
"""
from __future__ import annotations

TRAIN_ITEMS: tuple[str, ...] = (
    "diamond necklace", "gold watch", "silver bracelet", "pearl earrings", "ruby ring",
    "oil painting", "marble statue", "antique clock", "crystal chandelier", "jade figurine",
    "emerald brooch", "sapphire tiara", "platinum cufflinks", "vintage guitar", "rare violin",
    "signed baseball", "first edition book", "golden crown", "porcelain vase", "bronze sculpture",
    "leather briefcase", "designer handbag", "fur coat", "ivory chessboard", "silk tapestry",
    "cashmere scarf",
)

TEST_ITEMS: tuple[str, ...] = (
    "sports car", "vintage motorcycle", "grand piano", "gold ingot", "film camera",
    "brass telescope", "new laptop", "samurai sword", "gilded mirror", "persian rug",
    "opal pendant", "silver locket", "olympic medal", "championship trophy", "rare coin",
    "stamp collection", "ancient manuscript", "antique globe", "concert harp", "golden saxophone",
    "vintage microscope", "racing drone", "velvet armchair", "crystal decanter", "ceramic urn",
    "ebony cane",
)


def head_noun(item: str) -> str:
    """The last word of an item name: items sharing it count as near-duplicates."""
    return item.split()[-1].lower()
