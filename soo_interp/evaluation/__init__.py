"""Deception evaluation: classifying answers, scoring scenarios (generation and log-probability),
rates with confidence intervals, and offline capability checks."""
from .classify import LABELS, classify_response
from .rates import agreement, rates, rates_table, wilson_interval
from .scoring import continuation_logprobs, generate_responses, logprob_scores

__all__ = ["LABELS", "agreement", "classify_response", "continuation_logprobs",
           "generate_responses", "logprob_scores", "rates", "rates_table", "wilson_interval"]
