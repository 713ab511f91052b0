"""One calling convention for the library's entry points: `entry(model, data, config, *,
out=..., progress=True, **overrides)`, every one exported by `import soo_interp`; overrides are
config fields, checked by the same typed mechanism as the config itself."""
from __future__ import annotations

import inspect

import pytest

import soo_interp
from soo_interp.errors import ConfigError

# entry point -> (its positional parameters, in order; its config class name)
ENTRY_POINTS = {
    "measure": (["model", "pairs", "config"], "MeasureConfig"),
    "evaluate": (["model", "scenarios", "config"], "EvalConfig"),
    "train_soo": (["model", "pairs", "config"], "TrainConfig"),
    "fit_probes": (["model", "config"], "ProbeConfig"),
    "compare_models": (["model", "tuned", "pairs", "config"], "CompareConfig"),
    "sweep": (["model", "pairs", "config"], "SweepConfig"),
    "search": (["model", "config"], "SearchConfig"),
    "verdict": (["search_dir", "config"], "VerdictConfig"),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_follows_one_rule(name):
    positional, config_cls = ENTRY_POINTS[name]
    fn = getattr(soo_interp, name)
    params = inspect.signature(fn).parameters
    kinds = {p.name: p.kind for p in params.values()}
    assert [n for n, k in kinds.items() if k == inspect.Parameter.POSITIONAL_OR_KEYWORD] == positional
    assert params["config"].default is None
    assert params["progress"].kind == inspect.Parameter.KEYWORD_ONLY
    assert params["progress"].default is True  # one default everywhere
    assert "out_dir" not in params and "lm" not in params
    if "out" in params:
        assert params["out"].kind == inspect.Parameter.KEYWORD_ONLY
    assert list(params.values())[-1].kind == inspect.Parameter.VAR_KEYWORD  # **overrides
    assert isinstance(getattr(soo_interp, config_cls)(), soo_interp.config.Config)


def test_overrides_are_checked_like_config_fields(tmp_path):
    lm = soo_interp.load_model("organism")
    with pytest.raises(ConfigError, match=r"MeasureConfig: unknown keys \['lr'\]"):
        soo_interp.measure(lm, lr=1e-3)
    with pytest.raises(ConfigError, match="EvalConfig: n = 'many' is not a whole number"):
        soo_interp.evaluate(lm, "burglar", n="many")
    with pytest.raises(ConfigError, match="config must be a TrainConfig, not MeasureConfig"):
        soo_interp.train_soo(lm, None, soo_interp.MeasureConfig())
    with pytest.raises(ConfigError, match="SweepConfig: layers = 'abc'"):
        soo_interp.sweep(lm, layers="abc", out=tmp_path / "s")
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_config_and_overrides_give_the_same_result():
    lm = soo_interp.load_model("organism")
    pairs = soo_interp.soo_pairs("test")[:3]
    by_keywords = soo_interp.measure(lm, pairs, layers=[0, 1], pooling="mean", progress=False)
    cfg = soo_interp.MeasureConfig(layers="0-1", pooling="mean")
    assert by_keywords.equals(soo_interp.measure(lm, pairs, cfg, progress=False))
    assert set(by_keywords.layer) == {0, 1} and set(by_keywords.pooling) == {"mean"}
    over = soo_interp.measure(lm, pairs, cfg, pooling="last", progress=False)  # wins over cfg
    assert set(over.pooling) == {"last"} and not over.value.equals(by_keywords.value)


def test_the_package_exports_what_its_docstring_names():
    for name in soo_interp.__all__:
        assert getattr(soo_interp, name) is not None, name
        assert f"`{name}`" in soo_interp.__doc__ or name in ("PromptPair", "Site", "TrainResult",
                                                            "as_loaded_model", "load_pairs",
                                                            "soo_pairs", "summarize"), name
    assert soo_interp.plots.soo_heatmap  # the docstring names `plots`: it is an attribute
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        soo_interp.nope  # noqa: B018
