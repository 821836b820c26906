"""The results page (docs/RESULTS.md): every leaderboard under its own heading, the same bytes for the same files."""

from __future__ import annotations

from pathlib import Path

from benchmark.reporting.results_page import write_results_page


def _boards(folder: Path) -> list[Path]:
    folder.mkdir()
    tables = {"table1": "# Table 1: accuracy\n\n| method | synth |\n|---|---|\n| CluP | 70.0 |\n",
              "fig4": "# Figure 4: threshold\n\nSome note.\n"}
    paths = []
    for name, text in tables.items():
        paths.append(folder / f"{name}.md")
        paths[-1].write_text(text, encoding="utf-8")
    (folder / "table1.tex").write_text("\\begin{tabular}\\end{tabular}\n")
    return [*paths, folder / "table1.tex"]


def test_the_page_says_it_is_generated_and_includes_each_table_under_its_heading(tmp_path: Path):
    page = write_results_page(_boards(tmp_path / "boards"), tmp_path / "docs" / "RESULTS.md")
    text = page.read_text(encoding="utf-8")
    assert text.startswith("# Results\n")
    assert "python -m benchmark leaderboard" in text and "leaderboards/records/" in text
    assert "do not edit" in text.lower()
    assert "## Table 1: accuracy" in text and "| CluP | 70.0 |" in text
    assert "## Figure 4: threshold" in text and "Some note." in text
    assert text.index("## Table 1") < text.index("## Figure 4")
    assert "tabular" not in text and "\n# Table 1" not in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_the_page_is_deterministic(tmp_path: Path):
    boards = _boards(tmp_path / "boards")
    first = write_results_page(boards, tmp_path / "a.md").read_bytes()
    assert write_results_page(boards, tmp_path / "b.md").read_bytes() == first
