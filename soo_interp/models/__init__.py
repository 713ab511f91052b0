"""Models: loading, tokenization, and the site tables per architecture."""
from . import pretrained  # noqa: F401  (registers the pretrained built-in models)
from .loading import LoadedModel, attach_adapter, load_model, load_tokenizer
from .sites import (
                    ARCHITECTURES,
                    COMPONENTS,
                    Site,
                    arch_of,
                    check_sites,
                    n_layers,
                    parse_components,
                    parse_layers,
                    resolve_sites,
                    site_module,
                    tl_hook_name,
)
from .tokenize import Batch, encode, pad_ids, token_ids
from .wrap import as_loaded_model

__all__ = [
    "ARCHITECTURES", "COMPONENTS", "Batch", "LoadedModel", "Site", "arch_of", "as_loaded_model",
    "attach_adapter", "check_sites", "encode", "load_model", "load_tokenizer", "n_layers", "pad_ids",
    "parse_components", "parse_layers", "resolve_sites", "site_module", "tl_hook_name",
    "token_ids",
]
