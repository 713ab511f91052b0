"""Remote execution (NDIF) through nnsight, tested offline with nnsight's local stand-in for the
remote path: the trace is serialised and deserialised with soo_interp out of reach (as on a
server that does not have it), so our reductions must travel by value. Measuring and probe
activations come back equal to a local run; `--remote` without an API key is one line."""
from __future__ import annotations

import sys

import pytest

from soo_interp import load_model, measure, soo_pairs
from soo_interp.cli import main
from soo_interp.metrics import collect_pooled
from soo_interp.models.sites import Site
from soo_interp.models.wrap import remote_model

PAIRS = soo_pairs("test")[:6]


@pytest.fixture
def not_installed(monkeypatch):
    """soo_interp findable only through sys.path (which the stand-in hides while it
    deserialises), not through the editable install's finder: as on an NDIF server."""
    monkeypatch.setattr(sys, "meta_path", [f for f in sys.meta_path if "editable" not in repr(f)])


def test_remote_measure_and_activations_equal_local(tiny_model_dir, not_installed):
    path = str(tiny_model_dir("llama", n_layers=2))
    lm = remote_model(path, remote="local")
    assert lm.model.model.layers[0].self_attn.o_proj.weight.device.type == "meta"  # not loaded here
    for pooling in ("last", "aligned"):
        pairs = PAIRS if pooling == "last" else [p for p in soo_pairs("test") if
                                                 lm.tokenizer(p.self_text).input_ids.__len__()
                                                 == lm.tokenizer(p.other_text).input_ids.__len__()]
        got = measure(lm, pairs, pooling=pooling, remote="local", progress=False)
        want = measure(load_model(path), pairs, pooling=pooling, progress=False)
        assert set(got.backend) == {"nnsight"} and len(got) == len(want)
        assert (got.value - want.value).abs().max() < 1e-6
    sites = [Site(1, "attn"), Site(1, "resid")]
    texts = [p.self_text for p in PAIRS]
    a = collect_pooled(lm, texts, sites)
    b = collect_pooled(load_model(path), texts, sites)
    assert all(float((a[s] - b[s]).abs().max()) < 1e-6 for s in sites)


def test_remote_without_a_key_is_one_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from nnsight import CONFIG

    monkeypatch.setattr(CONFIG.API, "APIKEY", None)
    path = str(tiny_model_dir("llama", n_layers=2))
    for cmd in ("measure", "probe"):
        out = tmp_path / cmd
        assert main([cmd, "--model", path, "--remote", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "NDIF_API_KEY" in err and not out.exists()
    out = tmp_path / "local"
    assert main(["measure", "--model", path, "--remote", "local", "--layers", "1",
                 "--out", str(out)]) == 0
    assert (out / "soo.parquet").exists()


def test_remote_refuses_what_it_cannot_apply_and_records_nnsight(tiny_model_dir, tmp_path, capsys):
    """`--remote local` used to drop --adapter/--dtype (base numbers, adapter in run.json) and
    record backend hooks while nnsight ran: now refused flags, and run.json says nnsight."""
    import json

    from soo_interp.errors import ConfigError
    from soo_interp.measure import MeasureConfig

    path = str(tiny_model_dir("llama", n_layers=2))
    for extra in (["--adapter", str(tmp_path)], ["--dtype", "bfloat16"], ["--backend", "hooks"]):
        for cmd in ("measure", "probe"):
            out = tmp_path / "o"
            assert main([cmd, "--model", path, "--remote", "local", *extra, "--out", str(out)]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and extra[0] in err and not out.exists(), err
    out = tmp_path / "ok"
    assert main(["measure", "--model", path, "--remote", "local", "--layers", "1",
                 "--out", str(out)]) == 0
    assert json.loads((out / "run.json").read_text())["config"]["backend"] == "nnsight"
    assert MeasureConfig(remote="local").backend == "nnsight"
    with pytest.raises(ConfigError, match="remote must be"):
        measure(load_model(path), PAIRS, remote="yes", progress=False)
    with pytest.raises(ConfigError, match="through nnsight"):
        MeasureConfig(remote=True, backend="transformer_lens")
