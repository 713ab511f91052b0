"""Shadow copies: a model's module tree rebuilt from new module objects that share the original
parameters and buffers (no weight is copied). Libraries that rewrite the model they are given
(TransformerLens swaps modules for bridge components and switches attention to eager; nnsight
patches every module's `forward`) get the shadow, so the user's model stays as it was found."""
from __future__ import annotations

import copy
from collections import OrderedDict

import torch

_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
               "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_backward_hooks",
               "_backward_pre_hooks", "_state_dict_hooks", "_state_dict_pre_hooks",
               "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def shadow_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A structural copy of `model` sharing its parameter and buffer tensors, with its own
    config (a deep copy: attention implementation and the like can change on the shadow only),
    its own hook dictionaries and its own submodule objects."""
    configs: dict[int, object] = {}

    def clone(module: torch.nn.Module) -> torch.nn.Module:
        new = copy.copy(module)  # a new object with a shallow copy of __dict__
        new._parameters = OrderedDict(module._parameters)
        new._buffers = OrderedDict(module._buffers)
        new._non_persistent_buffers_set = set(module._non_persistent_buffers_set)
        for name in _HOOK_DICTS:
            if name in module.__dict__:
                setattr(new, name, OrderedDict(getattr(module, name)))
        cfg = module.__dict__.get("config")
        if cfg is not None and hasattr(cfg, "to_dict"):
            new.config = configs.setdefault(id(cfg), copy.deepcopy(cfg))
        new._modules = OrderedDict((k, None if v is None else clone(v))
                                   for k, v in module._modules.items())
        return new

    return clone(model)
