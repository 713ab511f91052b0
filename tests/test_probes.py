"""Probes: detectors recover planted directions, grouped CV keeps groups apart, persistence is
exact, signatures give known answers on constructed activations, and the CLI writes a run."""
from __future__ import annotations

import numpy as np
import pytest

from soo_interp.errors import ProbeError
from soo_interp.models.sites import Site
from soo_interp.probes import (
    Detector,
    LatDetector,
    LogisticDetector,
    MeanDiffDetector,
    auroc,
    cross_validate,
    grouped_folds,
    recall_at_fpr,
    separability,
)


def planted(n: int = 600, d: int = 32, seed: int = 0, strength: float = 5.0):
    """Gaussian activations whose label-1 rows are shifted along one random unit direction."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, d)) + strength * np.outer(y, u)
    return X, y, u


@pytest.mark.parametrize("cls", [LogisticDetector, MeanDiffDetector])
def test_planted_direction_is_recovered(cls):
    X, y, u = planted()
    det = cls().fit(X[:400], y[:400])
    assert float(det.direction @ u) > 0.9          # signed: label 1 scores higher
    assert auroc(det.score(X[400:]), y[400:]) > 0.99
    assert (det.predict(X[400:]) == y[400:]).mean() > 0.95


def test_lat_finds_the_dominant_contrast():
    # LAT is unsupervised up to the sign: it finds the planted direction when it dominates the
    # variance of differences.
    X, y, u = planted(strength=8.0)
    det = LatDetector(seed=1).fit(X, y)
    assert float(det.direction @ u) > 0.9


def test_random_labels_give_chance_auroc():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 32))
    y = rng.integers(0, 2, size=400)
    groups = np.arange(400) // 4
    vals = [r["value"] for r in cross_validate(X, y, groups, "logistic", folds=5)
            if r["metric"] == "auroc"]
    assert abs(np.mean(vals) - 0.5) < 0.08


def test_logistic_direction_is_in_input_space_under_unequal_scales():
    # Features with very different scales: the direction must be coef / scale, not coef.
    X, y, u = planted(n=600, d=8, seed=2)
    X = X * np.array([100.0, 1, 1, 1, 1, 1, 1, 1])
    det = LogisticDetector(C=10.0).fit(X, y)
    # the Bayes direction for a mean shift m with covariance diag(s^2) is m / s^2
    m = u * np.array([100.0, 1, 1, 1, 1, 1, 1, 1])
    bayes = m / np.array([100.0, 1, 1, 1, 1, 1, 1, 1]) ** 2
    bayes /= np.linalg.norm(bayes)
    assert float(det.direction @ bayes) > 0.95


def test_recall_at_fpr_counts_positives_above_negative_tail():
    neg = np.arange(100, dtype=float)            # 99th percentile = 98.01
    pos = np.array([50.0, 98.5, 99.5, 200.0])
    s = np.concatenate([neg, pos])
    y = np.concatenate([np.zeros(100, int), np.ones(4, int)])
    assert recall_at_fpr(s, y, 0.01) == pytest.approx(0.75)


def test_grouped_folds_never_split_a_group():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 4)
    y = np.tile([0, 1, 0, 1], 30)
    rng.shuffle(groups)
    seen_test = []
    for tr, te in grouped_folds(y, groups, 5, seed=0):
        assert not set(groups[tr]) & set(groups[te])
        seen_test.extend(te.tolist())
    assert sorted(seen_test) == list(range(len(y)))   # each row is tested exactly once


def test_grouped_cv_defeats_item_memorisation():
    # Labels are a property of the group (e.g. a template that is all 'self'), not of any
    # direction: ungrouped CV could memorise group identity; grouped CV must sit at chance.
    rng = np.random.default_rng(1)
    n_groups, per = 40, 6
    centers = rng.normal(size=(n_groups, 16)) * 3
    groups = np.repeat(np.arange(n_groups), per)
    y = np.repeat(rng.permutation(np.arange(n_groups) % 2), per)
    X = centers[groups] + 0.1 * rng.normal(size=(len(groups), 16))
    vals = [r["value"] for r in cross_validate(X, y, groups, "logistic", folds=5)
            if r["metric"] == "auroc"]
    assert np.mean(vals) < 0.75


def test_save_load_gives_identical_scores(tmp_path):
    X, y, _ = planted()
    for cls in (LogisticDetector, MeanDiffDetector, LatDetector):
        det = cls().fit(X, y)
        det.meta = {"layer": 1, "site": "attn"}
        det.save(tmp_path / cls.kind)
        back = Detector.load(tmp_path / f"{cls.kind}.json")
        assert type(back) is cls and back.meta == det.meta
        np.testing.assert_array_equal(back.score(X), det.score(X))
        assert back.threshold == det.threshold
    assert not list(tmp_path.glob("*.pkl"))


def test_loading_onto_another_hidden_size_is_one_line_error(tmp_path):
    X, y, _ = planted(d=32)
    LogisticDetector().fit(X, y).save(tmp_path / "p")
    det = Detector.load(tmp_path / "p")
    with pytest.raises(ProbeError, match="hidden size 32.*16 features"):
        det.score(np.zeros((3, 16)))


def test_bad_fit_inputs():
    X = np.zeros((10, 4))
    with pytest.raises(ProbeError, match="both classes"):
        LogisticDetector().fit(X, np.ones(10))
    with pytest.raises(ProbeError, match="not fitted"):
        MeanDiffDetector().score(X)


def test_separability_long_frame_and_control():
    X, y, _ = planted(n=200, d=16)
    groups = np.arange(200) // 2
    df = separability({Site(0, "attn"): X, Site(1, "mlp"): np.random.default_rng(0).normal(
        size=(200, 16))}, y, groups, probes=("logistic",), folds=4, seed=0,
        model="m", suite="s")
    assert list(df.columns) == ["model", "suite", "layer", "component", "probe", "control", "fold",
                                "metric", "value"]
    a = df[df.metric == "auroc"].groupby(["layer", "control"])["value"].mean()
    assert a[(0, "real")] > 0.95
    assert abs(a[(0, "shuffled")] - 0.5) < 0.15
    assert abs(a[(1, "real")] - 0.5) < 0.15


def test_too_few_groups_and_one_class_are_errors():
    X = np.zeros((8, 4))
    with pytest.raises(ProbeError, match="needs at least 5"):
        separability({Site(0, "attn"): X}, [0, 1] * 4, [0, 0, 1, 1, 2, 2, 3, 3], folds=5)
    with pytest.raises(ProbeError, match="one class only"):
        separability({Site(0, "attn"): X}, [1] * 8, list(range(8)), folds=2)


# --------------------------------------------------------------------------- signatures
from soo_interp.probes.signatures import (  # noqa: E402
    overlap_without_indistinguishability,
    relative_soo,
    relocation,
    surviving_deception_direction,
)


def paired(n_pairs: int = 60, d: int = 24, seed: int = 0, delta=None, noise: float = 0.05):
    """Self/other pairs sharing a per-pair base vector (high variance in every dim but the last,
    which has almost none); self = base + delta/2, other = base - delta/2, plus small noise."""
    rng = np.random.default_rng(seed)
    scales = np.ones(d) * 3.0
    scales[-1] = 0.01
    base = rng.normal(size=(n_pairs, d)) * scales
    delta = np.zeros(d) if delta is None else delta
    X = np.empty((2 * n_pairs, d))
    X[0::2] = base + delta / 2 + noise * rng.normal(size=(n_pairs, d))
    X[1::2] = base - delta / 2 + noise * rng.normal(size=(n_pairs, d))
    y = np.tile([1, 0], n_pairs)
    pair_ids = np.repeat([f"p{i}" for i in range(n_pairs)], 2)
    return X, y, pair_ids, pair_ids.copy()


def cv_auroc(X, y, groups):
    return float(np.mean([r["value"] for r in cross_validate(X, y, groups, "logistic", 5)
                          if r["metric"] == "auroc"]))


def test_relative_soo_by_hand():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]])
    y, pairs = np.array([1, 0, 1, 0]), ["a", "a", "b", "b"]
    # pair MSE = (2^2 + 0) / 2 = 2 for both pairs; feature variances 1 and 4 -> mean 2.5;
    # mean MSE between different rows = 2 * 4/3 * 2.5 = 20/3; rho = 2 / (20/3) = 0.3
    assert relative_soo(X, y, pairs) == pytest.approx(0.3)


def test_signature_a_low_variance_difference_is_flagged():
    d = 24
    e = np.zeros(d)
    e[-1] = 1.0
    cases = {"hidden": e * 0.6,                        # tiny MSE, but perfectly separable
             "none": None,                             # identical distributions
             "loud": np.r_[np.ones(d - 1) * 6.0, 0.0]}  # separable and far apart by MSE
    out = {}
    for name, delta in cases.items():
        X, y, pairs, groups = paired(n_pairs=150, delta=delta)
        site = Site(0, "attn")
        df = overlap_without_indistinguishability({site: X}, y, pairs,
                                                  {site: cv_auroc(X, y, groups)})
        out[name] = df.iloc[0]
    assert out["hidden"]["auroc"] > 0.97 and out["hidden"]["rho"] < 0.01
    assert out["hidden"]["value"] > 0.9 and bool(out["hidden"]["flag"])
    assert out["none"]["value"] < 0.2 and not out["none"]["flag"]
    assert out["loud"]["auroc"] > 0.97 and out["loud"]["rho"] > 1.0
    assert out["loud"]["value"] == 0.0 and not out["loud"]["flag"]


def test_signature_b_survives_unless_direction_removed():
    X, y, u = planted(n=400, d=16, seed=4)
    groups = np.arange(400) // 4
    rng = np.random.default_rng(0)
    other = rng.normal(size=(400, 16))
    other -= np.outer(other @ u, u)                  # noise orthogonal to the direction
    kept = X + 0.5 * other                           # tuned: direction intact
    removed = X - np.outer(X @ u, u)                 # tuned: direction projected out
    site = Site(1, "resid")
    a = surviving_deception_direction({site: X}, {site: kept}, y, groups).iloc[0]
    b = surviving_deception_direction({site: X}, {site: removed}, y, groups).iloc[0]
    assert a["base_auroc"] > 0.99 and a["value"] > 0.97 and bool(a["flag"])
    assert abs(b["value"] - 0.5) < 0.1 and not b["flag"]
    with pytest.raises(ProbeError, match="differ in shape"):
        surviving_deception_direction({site: X}, {site: X[:, :8]}, y, groups)


def test_signature_c_relocation_values():
    L = [Site(i, "attn") for i in range(3)]
    base = {L[0]: 0.95, L[1]: 0.60, L[2]: 0.55}
    tuned = {L[0]: 0.60, L[1]: 0.90, L[2]: 0.50}
    df = relocation(base, tuned, trained_site=L[0]).set_index("layer")
    assert np.isnan(df.loc[0, "value"])
    assert df.loc[1, "value"] == pytest.approx(0.30) and bool(df.loc[1, "flag"])
    assert df.loc[2, "value"] == 0.0
    inferred = relocation(base, tuned).set_index("layer")
    assert inferred.loc[1, "trained_site"] == "L0.attn (inferred)"
    # nothing fell at the trained site -> nothing relocated, whatever rose elsewhere
    flat = relocation(base, {**tuned, L[0]: 0.97}, trained_site=L[0]).set_index("layer")
    assert flat.loc[1, "value"] == 0.0


# --------------------------------------------------------------------------- suites
import json  # noqa: E402

from soo_interp.probes.suites import available_suites, load_suite  # noqa: E402


def test_builtin_suites_are_well_formed():
    assert {"self_vs_other", "honest_vs_deceptive", "neutral_control"} <= set(available_suites())
    so = load_suite("self_vs_other")
    templates = set(so.groups)
    assert len(templates - {"burglar"}) >= 5
    by_pair: dict = {}
    for e in so.examples:
        by_pair.setdefault(e.pair_id, {})[so.label_names[e.label]] = e.text
    for p in by_pair.values():   # pairs differ only in the self/other reference
        s, o = p["self"].split(), p["other"].split()
        diff = [(a, b) for a, b in zip(s, o) if a != b]
        assert len(s) == len(o) and {a for a, _ in diff} <= {"You", "yourself", "want"}
    hd = load_suite("honest_vs_deceptive")
    assert {"burglar/base", "treasure_hunt/base", "generalization/all", "where"} <= set(hd.groups)


def write_suite(folder, lines, labels=("a", "b"), group_by="template", yaml_text=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text(yaml_text or (
        f"name: {folder.name}\nlabels: [{labels[0]}, {labels[1]}]\ngroup_by: {group_by}\n"
        "files: [p.jsonl]\n"))
    (folder / "p.jsonl").write_text("\n".join(
        line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return folder


def rec(i, label, template=None):
    return {"id": f"x{i}", "text": f"text number {i}", "label": label, "pair_id": f"p{i // 2}",
            "template": template or f"t{i // 2}"}


def test_malformed_suites_name_file_and_line(tmp_path):
    bad_json = write_suite(tmp_path / "s1", [rec(0, "a"), "{not json"])
    with pytest.raises(ProbeError, match=r"s1/p\.jsonl:2: not valid JSON"):
        load_suite(bad_json)
    bad_label = write_suite(tmp_path / "s2", [rec(0, "a"), rec(1, "c")])
    with pytest.raises(ProbeError, match=r"p\.jsonl:2: label 'c' is not one"):
        load_suite(bad_label)
    missing = write_suite(tmp_path / "s3", [{"id": "x", "text": "t", "label": "a"}])
    with pytest.raises(ProbeError, match=r"p\.jsonl:1: missing or empty field\(s\) \['pair_id'"):
        load_suite(missing)
    bad_yaml = write_suite(tmp_path / "s4", [rec(0, "a")],
                           yaml_text="name: s4\nlabels: [a, b\nfiles: [p.jsonl]\n")
    with pytest.raises(ProbeError, match=r"s4/suite\.yaml:\d+: suite spec is not valid YAML"):
        load_suite(bad_yaml)
    with pytest.raises(ProbeError, match="no probe suite 'nope'"):
        load_suite("nope")


# --------------------------------------------------------------------------- end to end
import torch  # noqa: E402

from soo_interp.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def probe_runs(tiny_model_dir, tmp_path_factory):
    """A tiny model and a perturbed copy, each probed on every built-in suite via the CLI."""
    from soo_interp import load_model

    base = tiny_model_dir("llama", n_layers=2, d_model=32, seed=0)
    lm = load_model(str(base))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in lm.model.named_parameters():
            if "layers.1." in name:
                p.add_(0.5 * p.std() * torch.randn_like(p))
    root = tmp_path_factory.mktemp("probe-runs")
    lm.model.save_pretrained(root / "tuned-model")
    lm.tokenizer.save_pretrained(root / "tuned-model")
    for name, path in (("base", base), ("tuned", root / "tuned-model")):
        rc = main(["probe", "--model", str(path), "--suite", "all", "--folds", "4",
                   "--probes", "logistic,mean_diff,lat", "--cache-dir", str(root / "cache"),
                   "--out", str(root / name)])
        assert rc == 0
    return root


def test_probe_run_writes_every_output(probe_runs):
    import pandas as pd

    run = probe_runs / "base"
    for f in ("probes.parquet", "summary.csv", "signatures.csv", "separability.png",
              "heatmap_self_vs_other.png", "heatmap_honest_vs_deceptive.png", "run.json",
              "transfer.parquet"):
        assert (run / f).stat().st_size > 0, f
    tr = pd.read_parquet(run / "transfer.parquet")
    assert set(tr.train) == {"contrast.jsonl", "scenarios"}
    assert {"all", "burglar/base", "generalization/all", "where"} <= set(tr.test)
    df = pd.read_parquet(run / "probes.parquet")
    assert list(df.columns) == ["model", "suite", "layer", "component", "probe", "control", "fold",
                                "metric", "value"]
    assert set(df.suite) == {"self_vs_other", "honest_vs_deceptive", "neutral_control"}
    assert set(df.control) == {"real", "shuffled"} and set(df.fold) == {0, 1, 2, 3}
    assert len(df) == 3 * 6 * 3 * 2 * 4 * 4   # suites x sites x probes x controls x folds x metrics
    summary = pd.read_csv(run / "summary.csv")
    assert {"mean", "ci_low", "ci_high"} <= set(summary.columns)
    sig = pd.read_csv(run / "signatures.csv")
    assert len(sig) == 6 and set(sig.signature) == {"overlap_without_indistinguishability"}
    run_json = json.loads((run / "run.json").read_text())
    assert run_json["config"]["folds"] == 4 and run_json["seed"] == 0
    # shuffled labels sit near chance on average
    shuffled = df[(df.control == "shuffled") & (df.metric == "auroc") & (df.probe == "logistic")]
    assert abs(shuffled.value.mean() - 0.5) < 0.1
    assert not list(run.rglob("*.pkl"))


def test_saved_probe_reproduces_a_fresh_fit(probe_runs):
    from soo_interp.probes import Detector, make_detector
    from soo_interp.probes.activations import ActivationSet

    acts = ActivationSet.load(probe_runs / "base" / "activations" / "self_vs_other")
    site = Site(1, "resid")
    det = Detector.load(probe_runs / "base" / "probes" / "self_vs_other" / "L1.resid.logistic")
    fresh = make_detector("logistic", seed=0).fit(acts.acts[site], acts.suite.y)
    np.testing.assert_allclose(det.score(acts.acts[site]), fresh.score(acts.acts[site]))
    assert det.meta["site"] == "L1.resid" and det.meta["labels"] == ["other", "self"]


def test_probe_on_another_hidden_size_fails_in_one_line(probe_runs, tiny_model_dir):
    from soo_interp import load_model
    from soo_interp.probes import Detector
    from soo_interp.probes.activations import collect_activations

    wide = load_model(str(tiny_model_dir("llama", n_layers=2, d_model=64, seed=0)))
    acts = collect_activations(wide, load_suite("self_vs_other"), [Site(0, "attn")])
    det = Detector.load(probe_runs / "base" / "probes" / "self_vs_other" / "L0.attn.logistic")
    with pytest.raises(ProbeError, match="hidden size 32, but the activations have 64") as e:
        det.score(acts.acts[Site(0, "attn")])
    assert "\n" not in str(e.value)


def test_activation_cache_is_read_back(probe_runs, tiny_model_dir):
    from safetensors.torch import load_file, save_file

    from soo_interp import load_model
    from soo_interp.probes.activations import collect_activations

    cache = probe_runs / "cache"
    folders = sorted(p for p in cache.iterdir() if p.name.startswith("self_vs_other-"))
    assert len(folders) == 2          # base and tuned differ in weights -> two entries
    lm = load_model(str(tiny_model_dir("llama", n_layers=2, d_model=32, seed=0)))
    suite = load_suite("self_vs_other")
    first = collect_activations(lm, suite, [Site(0, "mlp")], cache_dir=cache)
    # tamper with the cached shard: a cache hit must return the tampered values
    for folder in folders:
        shard = folder / "layer_000.safetensors"
        t = load_file(str(shard))
        t["mlp"] = t["mlp"] + 1.0
        save_file(t, str(shard))
    again = collect_activations(lm, suite, [Site(0, "mlp")], cache_dir=cache)
    torch.testing.assert_close(again.acts[Site(0, "mlp")], first.acts[Site(0, "mlp")] + 1.0)
    fresh = collect_activations(lm, suite, [Site(0, "mlp")])
    torch.testing.assert_close(fresh.acts[Site(0, "mlp")], first.acts[Site(0, "mlp")])


def test_compare_writes_all_three_signatures(probe_runs, capsys):
    import pandas as pd

    out = probe_runs / "cmp"
    assert main(["probe", "--compare", str(probe_runs / "base"), str(probe_runs / "tuned"),
                 "--trained-site", "L1.attn", "--out", str(out)]) == 0
    sig = pd.read_csv(out / "signatures.csv")
    assert set(sig.signature) == {"overlap_without_indistinguishability",
                                  "surviving_deception_direction", "relocation"}
    a = sig[sig.signature == "overlap_without_indistinguishability"]
    assert len(a) == 12 and set(a.model) == {"base", "tuned"}   # both models, 6 sites each
    meta = json.loads((out / "run.json").read_text())
    assert meta["tuned_model"].endswith("tuned-model")
    c = sig[sig.signature == "relocation"].set_index(["layer", "component"])
    assert np.isnan(c.loc[(1, "attn"), "value"]) and (c.trained_site == "L1.attn").all()
    base = pd.read_parquet(probe_runs / "base" / "probes.parquet")
    tuned = pd.read_parquet(probe_runs / "tuned" / "probes.parquet")
    pick = lambda d: d[(d.suite == "self_vs_other") & (d.probe == "logistic") & (  # noqa: E731
        d.control == "real") & (d.metric == "auroc")].groupby(["layer", "component"]).value.mean()
    delta = pick(tuned) - pick(base)
    assert c.loc[(0, "mlp"), "delta"] == pytest.approx(delta.loc[(0, "mlp")])
    b = sig[sig.signature == "surviving_deception_direction"].set_index(["layer", "component"])
    # layer 0 was not perturbed: its activations are identical, so the base probe reads the
    # tuned model exactly as well as the base model
    assert b.loc[(0, "resid"), "value"] == pytest.approx(b.loc[(0, "resid"), "base_auroc"])
    assert (out / "signatures.png").exists() and (out / "run.json").exists()


def test_compare_refuses_another_hidden_size(probe_runs, tiny_model_dir, tmp_path, capsys):
    wide = str(tiny_model_dir("llama", n_layers=2, d_model=64, seed=0))
    assert main(["probe", "--model", wide, "--layers", "0", "--components", "attn", "--folds", "4",
                 "--probes", "mean_diff", "--out", str(tmp_path / "wide")]) == 0
    capsys.readouterr()
    err = run_cli_error(["probe", "--compare", str(probe_runs / "base"), str(tmp_path / "wide"),
                         "--out", str(tmp_path / "cmp")], capsys)
    assert "fit on hidden size 32 but the tuned run has hidden size 64" in err
    assert not (tmp_path / "cmp").exists()


def run_cli_error(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    return err


def test_cli_bad_inputs(tmp_path, tiny_model_dir, capsys):
    model = str(tiny_model_dir("llama", n_layers=2, d_model=32, seed=0))
    one = write_suite(tmp_path / "one", [rec(i, "a") for i in range(10)])
    err = run_cli_error(["probe", "--model", model, "--suite", str(one), "--out",
                         str(tmp_path / "o1")], capsys)
    assert "one class only" in err
    few = write_suite(tmp_path / "few", [rec(i, "ab"[i % 2]) for i in range(6)])
    err = run_cli_error(["probe", "--model", model, "--suite", str(few), "--out",
                         str(tmp_path / "o2")], capsys)
    assert "3 groups" in err and "needs at least 5" in err
    broken = write_suite(tmp_path / "broken", [rec(0, "a"), "oops"])
    err = run_cli_error(["probe", "--model", model, "--suite", str(broken), "--out",
                         str(tmp_path / "o3")], capsys)
    assert "p.jsonl:2" in err
    err = run_cli_error(["probe", "--compare", str(tmp_path), str(tmp_path), "--out",
                         str(tmp_path / "o4")], capsys)
    assert "is not a probe run" in err
    err = run_cli_error(["probe", "--compare", str(tmp_path), str(tmp_path), "--trained-site",
                         "layer3", "--out", str(tmp_path / "o5")], capsys)
    assert "cannot read site 'layer3'" in err
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))


def test_transfer_reads_a_shared_direction_only():
    from soo_interp.probes import transfer

    rng = np.random.default_rng(5)
    d, n = 16, 200
    u, v = np.eye(d)[0], np.eye(d)[1]
    y = np.tile([0, 1], n)
    origins = np.repeat(["contrast", "scenarios"], n)
    groups = np.where(origins == "contrast", "c", np.where(np.arange(2 * n) % 4 < 2, "s1", "s2"))
    shared = rng.normal(size=(2 * n, d)) + 4 * np.outer(y, u)
    # second source's classes differ along v only: a contrast-set direction cannot read them
    moved = shared.copy()
    moved[n:] = rng.normal(size=(n, d)) + 4 * np.outer(y[n:], v)
    site = Site(0, "resid")
    for X, lo, hi in ((shared, 0.97, 1.0), (moved, 0.35, 0.65)):
        df = transfer({site: X}, y, groups, origins)
        a = df[(df.train == "contrast") & (df.metric == "auroc")].set_index("test").value
        assert set(a.index) == {"all", "s1", "s2"}
        assert lo <= a["all"] <= hi


def test_same_seed_same_numbers():
    X, y, _ = planted(n=120, d=8)
    groups = np.arange(120) // 6
    run = lambda seed: separability({Site(0, "attn"): X}, y, groups, ("logistic", "lat"),  # noqa
                                    folds=4, seed=seed)
    a, b, c = run(0), run(0), run(1)
    assert a.equals(b)
    assert not a.equals(c)        # a different seed shuffles folds and control labels
