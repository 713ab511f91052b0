"""Deception evaluation: classifying answers, scoring scenarios (generation and log-probability),
rates with confidence intervals, and offline capability checks."""
from .capability import capability, lm_eval_tasks, next_token_kl, perplexity
from .classify import LABELS, classify_response, looks_like_sentence
from .rates import agreement, rates, rates_table
from .run import SCORINGS, build_records, evaluate, parse_scenarios
from .scoring import continuation_logprobs, fast_logprobs, generate_responses, logprob_scores

__all__ = ["LABELS", "SCORINGS", "agreement", "build_records", "capability", "classify_response",
           "continuation_logprobs", "evaluate", "fast_logprobs", "generate_responses",
           "lm_eval_tasks", "logprob_scores", "looks_like_sentence", "next_token_kl",
           "parse_scenarios", "perplexity", "rates", "rates_table"]
