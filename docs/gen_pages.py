"""Pages written at build time (mkdocs-gen-files), so that nothing here is listed or copied by hand:

- `reference/`: one page per public module of the package tree (a module or package whose name
  starts with `_` is private and left out), from its docstrings;
- `results/`: one page per folder under `reports/` that holds files (its report markdown, then
  its figures and tables), one card per shipped organism (`soo-interp organism card`), and every
  `benchmarks/*.md`;
- `figures/`: the repository's `figures/`, which the guide's pages show.

A module, report folder or organism that appears later is picked up by the next build.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import mkdocs_gen_files
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document (and card) the checkout being built, not another install
PACKAGE = "soo_interp"
REPORTS = ROOT / "reports"
MAX_INLINE_ROWS = 150  # a CSV of a folder without a report is shown as a table up to this size
FIGURE_SUFFIXES = (".png", ".svg", ".jpg")


def _copy(src: Path, dest: str) -> None:
    with mkdocs_gen_files.open(dest, "wb") as f:
        f.write(src.read_bytes())


def _write(dest: str, text: str, source: Path | None = None) -> None:
    with mkdocs_gen_files.open(dest, "w") as f:
        f.write(text)
    if source is not None:
        mkdocs_gen_files.set_edit_path(dest, source.relative_to(ROOT))


def public_modules() -> list[tuple[str, ...]]:
    """Dotted-name parts of every public module and package, in tree order."""
    out = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(p.startswith("_") for p in parts):
            out.append(parts)
    return out


def reference_pages() -> None:
    nav = mkdocs_gen_files.Nav()
    for parts in public_modules():
        is_package = (ROOT.joinpath(*parts) / "__init__.py").is_file()
        doc = Path("reference", *parts, "index.md") if is_package else Path(
            "reference", *parts).with_suffix(".md")
        nav[parts] = doc.relative_to("reference").as_posix()
        _write(doc.as_posix(), f"::: {'.'.join(parts)}\n")
        source = ROOT.joinpath(*parts, "__init__.py") if is_package else ROOT.joinpath(
            *parts).with_suffix(".py")
        mkdocs_gen_files.set_edit_path(doc.as_posix(), source.relative_to(ROOT))
    _write("reference/SUMMARY.md", "".join(nav.build_literate_nav()))


def _demote(markdown: str, levels: int = 1) -> str:
    """Every ATX heading `levels` deeper (outside code fences)."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,5} ", line):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out) + "\n"


def _csv_table(path: Path) -> str:
    df = pd.read_csv(path)
    if len(df) > MAX_INLINE_ROWS:
        return f"[`{path.name}`]({path.name}): {len(df)} rows x {df.shape[1]} columns.\n"
    return f"[`{path.name}`]({path.name}) ({len(df)} rows):\n\n{df.to_markdown(index=False)}\n"


def report_folder_page(folder: Path, dest: str) -> None:
    """The page of one report folder, titled by its name: its markdown reports, then the figures,
    tables and files those do not already show."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    for p in files:
        if p.suffix != ".md":  # the markdown is part of the page itself
            _copy(p, f"{dest}/{p.name}")
    texts = [p.read_text() for p in files if p.suffix == ".md"]
    body = [f"# {folder.name}\n", *(_demote(t) for t in texts)]
    shown = "\n".join(texts)
    figures = [p for p in files if p.suffix in FIGURE_SUFFIXES and p.name not in shown]
    if figures:
        body.append("\n## Figures\n\n" + "\n\n".join(f"![{p.stem}]({p.name})" for p in figures)
                    + "\n")
    tables = [p for p in files if p.suffix == ".csv"] if not texts else []  # a report shows its own
    if tables:
        body.append("\n## Tables\n\n" + "\n".join(_csv_table(p) for p in tables))
    listed = [p for p in files if p.suffix not in (".md", *FIGURE_SUFFIXES) and p not in tables]
    if listed:
        body.append("\n## Files\n\n" + "\n".join(f"- [`{p.name}`]({p.name})" for p in listed)
                    + "\n")
    body.append(f"\n*Generated at build time from `{folder.relative_to(ROOT).as_posix()}/`.*\n")
    _write(f"{dest}/index.md", "\n".join(body), files[0])


def group_page(folder: Path, dest: str) -> None:
    """The page of a report folder that only holds folders: links to them."""
    links = [f"- [{d.name}]({d.name}/index.md)" for d in sorted(folder.iterdir())
             if d.is_dir() and not d.name.startswith(".")]
    _write(f"{dest}/index.md", f"# {folder.name}\n\nReports under "
           f"`{folder.relative_to(ROOT).as_posix()}/`:\n\n" + "\n".join(links) + "\n")


def organism_cards() -> list[tuple[str, str, str]]:
    """`soo-interp organism card` of every organism shipped in the package, one page each.
    Returns (name, page, source) per card."""
    from soo_interp.organism.checkpoint import KNOWN_ORGANISMS, PACKAGE_DIR, card

    pages, seen = [], set()
    for name, folder in KNOWN_ORGANISMS.items():
        if folder in seen or not (PACKAGE_DIR / folder).is_dir():
            continue  # an alias of one already carded, or not shipped (yet)
        seen.add(folder)
        source = f"{PACKAGE}/organism/{folder}/"
        text = card(name).replace(str(ROOT) + "/", "")
        cut = text.index("\n", text.index("Reproduce:")) + 1  # the plain-text head ends there
        page = (f"# {name}\n\n```text\n{text[:cut]}```\n\n{_demote(text[cut:])}\n"
                f"*Generated at build time by `soo-interp organism card --name {name}` from "
                f"`{source}`.*\n")
        _write(f"results/organisms/{name}.md", page, PACKAGE_DIR / folder / "report.md")
        pages.append((name, f"organisms/{name}.md", source))
    return pages


def report_pages() -> list[tuple[tuple[str, ...], str, str]]:
    """A page per folder under reports/ (hidden ones skipped). Returns (path parts, page,
    source) per folder."""
    pages = []
    for folder in sorted(d for d in REPORTS.rglob("*") if d.is_dir() and not any(
            p.startswith(".") for p in d.relative_to(REPORTS).parts)):
        rel = folder.relative_to(REPORTS).as_posix()
        has_files = any(p.is_file() and not p.name.startswith(".") for p in folder.iterdir())
        (report_folder_page if has_files else group_page)(folder, f"results/{rel}")
        pages.append((tuple(rel.split("/")), f"{rel}/index.md", f"reports/{rel}/"))
    return pages


def results_pages() -> None:
    nav = mkdocs_gen_files.Nav()
    nav["Overview"] = "index.md"
    overview = ["# Results\n", "Every page in this section is written when the site is built, from "
                "the committed reports, so nothing here is copied by hand and a rerun that commits "
                "new reports updates it.\n", "## Organisms\n"]
    for name, page, source in organism_cards():
        nav["Organisms", name] = page
        overview.append(f"- [{name}]({page}): its card, from `{source}`")
    overview.append("\n## Reports\n")
    for parts, page, source in report_pages():
        nav[("Reports", *parts)] = page
        overview.append(f"{'    ' * (len(parts) - 1)}- [{parts[-1]}]({page}) (`{source}`)")
    overview.append("\n## Benchmarks\n")
    for md in sorted((ROOT / "benchmarks").glob("*.md")):
        _write(f"results/benchmarks/{md.name}", md.read_text(), md)
        nav["Benchmarks", md.stem] = f"benchmarks/{md.name}"
        overview.append(f"- [{md.stem}](benchmarks/{md.name}) (`benchmarks/{md.name}`)")
    _write("results/index.md", "\n".join(overview) + "\n")
    _write("results/SUMMARY.md", "".join(nav.build_literate_nav()))


def figures() -> None:
    for p in sorted((ROOT / "figures").glob("*")):
        if p.suffix in FIGURE_SUFFIXES:
            _copy(p, f"figures/{p.name}")


reference_pages()
results_pages()
figures()
