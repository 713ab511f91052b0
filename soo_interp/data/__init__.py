"""Prompt data: SOO pairs, item lists and evaluation scenarios."""
from .pairs import PromptPair, load_pairs, save_pairs, soo_pairs, validate_pairs

__all__ = ["PromptPair", "load_pairs", "save_pairs", "soo_pairs", "validate_pairs"]
