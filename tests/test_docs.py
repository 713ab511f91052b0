"""`make docs` builds the documentation site strictly (a broken link, page or reference fails it),
and the pages that are generated, not listed, are there: one API page per public module, one
results page per report folder, a card per shipped organism, every guide page."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_MKDOCS_2_WARNING="1",
               DISABLE_MKDOCS_2_WARNING="true", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--site-dir", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr[-5000:]}"
    return out


@pytest.mark.slow
def test_every_public_module_has_an_api_page(site):
    modules = [p.relative_to(ROOT).with_suffix("") for p in (ROOT / "soo_interp").rglob("*.py")]
    modules = [m.parent if m.name == "__init__" else m for m in modules]  # a package's page
    public = [m for m in modules if not any(part.startswith("_") for part in m.parts)]
    assert len(public) > 50 and Path("soo_interp/experiments") in public
    for m in public:
        package = (ROOT / m / "__init__.py").is_file()
        page = site / "reference" / (m / "index.html" if package else f"{m}.html")
        assert page.is_file(), f"no API page for {m}"
        assert ".".join(m.parts) in page.read_text(), m
    init = site / "reference" / "soo_interp" / "index.html"  # a package page documents __init__
    assert "load_model" in init.read_text()
    assert not (site / "reference" / "soo_interp" / "plots" / "_base").exists()  # private


@pytest.mark.slow
def test_reports_organisms_and_guide_are_rendered(site):
    for folder in (d for d in (ROOT / "reports").rglob("*") if d.is_dir()):
        rel = folder.relative_to(ROOT / "reports")
        assert (site / "results" / rel / "index.html").is_file(), f"no results page for {rel}"
    search = (site / "results" / "organism-search" / "index.html").read_text()
    assert "met by no configuration" in search and 'src="pareto.png"' in search
    assert (site / "results" / "organism-search" / "configs.csv").is_file()  # downloadable
    card = (site / "results" / "organisms" / "organism.html").read_text()
    assert "555,520-parameter" in card and "Over build seeds 0, 1, 2" in card
    for page in (ROOT / "docs" / "guide").glob("*.md"):
        assert (site / "guide" / f"{page.stem}.html").is_file(), page
    assert (site / "figures" / "demo_rates.png").is_file()


def test_the_readme_links_to_files_that_exist():
    """The README is not part of the site, so its links are checked here."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r'\]\(([^)#\s]+)[^)]*\)|src="([^"]+)"', readme)
    targets = [a or b for a, b in links if not (a or b).startswith("http")]
    assert len(targets) >= 10
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"
