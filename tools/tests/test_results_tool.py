"""tools/results: README sections generated from results files, and --check."""

import subprocess

from conftest import run_tool, write_results_file

BLOCK = """# tiny

## Results

<!-- results b=results/bench.json s=results/study.json
| figure | value |
|---|---|
| speed-up | **{b.speed_x:.1f}x** |
| per seed | {s.runs.*.p1:.3f} ({s.runs.#} seeds) |
| first seed | {s.runs.0.p1:.2f} ({s.$command}) |
-->
<!-- /results -->

Inline: the speed-up is <!-- results b=results/bench.json: {b.speed_x:.0f}x -->?<!-- /results -->.
"""


def setup_readme(root, text=BLOCK):
    pkg = root / "packages" / "tiny"
    (pkg / "README.md").write_text(text)
    write_results_file(pkg / "results" / "bench.json", {"speed_x": 2.46, "baseline_x": 1.0})
    write_results_file(pkg / "results" / "study.json",
                       {"runs": [{"p1": 0.251}, {"p1": 0.0014}]}, command="x study --seeds 2")
    return pkg / "README.md"


def test_generates_tables_and_inline_figures_then_check_passes(fixture_repo):
    readme = setup_readme(fixture_repo)
    stale = run_tool("results", "--check", root=fixture_repo)
    assert stale.returncode == 1 and "packages/tiny/README.md" in stale.stdout
    assert "line 5" in stale.stdout, stale.stdout
    gen = run_tool("results", root=fixture_repo)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    text = readme.read_text()
    assert "-->\n| figure | value |\n|---|---|\n| speed-up | **2.5x** |\n" in text
    assert "| per seed | 0.251, 0.001 (2 seeds) |" in text
    assert "| first seed | 0.25 (x study --seeds 2) |" in text
    assert "the speed-up is <!-- results b=results/bench.json: {b.speed_x:.0f}x -->2x" \
           "<!-- /results -->." in text
    assert run_tool("results", "--check", root=fixture_repo).returncode == 0
    assert run_tool("results", root=fixture_repo).stdout.count("up to date") == 1
    assert readme.read_text() == text  # a second run changes nothing


def test_check_fails_when_the_json_changes_or_the_table_is_edited(fixture_repo):
    readme = setup_readme(fixture_repo)
    assert run_tool("results", root=fixture_repo).returncode == 0
    json_file = fixture_repo / "packages" / "tiny" / "results" / "bench.json"
    write_results_file(json_file, {"speed_x": 3.0})
    p = run_tool("results", "--check", root=fixture_repo)
    assert p.returncode == 1 and "out of date" in p.stdout and "FAILED" in p.stdout
    assert run_tool("results", root=fixture_repo).returncode == 0
    assert "**3.0x**" in readme.read_text()
    readme.write_text(readme.read_text().replace("**3.0x**", "**3.1x**"))  # typed by hand
    assert run_tool("results", "--check", root=fixture_repo).returncode == 1


def test_missing_figure_file_or_bad_marker_is_an_error_not_an_empty_cell(fixture_repo):
    readme = setup_readme(fixture_repo)
    text = BLOCK.replace("{b.speed_x:.1f}", "{b.speed_y:.1f}")
    readme.write_text(text)
    p = run_tool("results", root=fixture_repo)
    assert p.returncode == 1 and "has no figure 'speed_y'" in p.stdout
    assert "packages/tiny/README.md:5" in p.stdout
    assert readme.read_text() == text  # nothing written on error
    readme.write_text(BLOCK.replace("results/study.json", "results/gone.json"))
    p = run_tool("results", "--check", root=fixture_repo)
    assert p.returncode == 1 and "gone.json: no such results file" in p.stdout
    readme.write_text(BLOCK.replace("<!-- /results -->\n\nInline", "\n\nInline"))
    p = run_tool("results", "--check", root=fixture_repo)
    assert p.returncode == 1 and "opens before the previous one closes" in p.stdout
    (fixture_repo / "packages" / "tiny" / "results" / "bench.json").write_text('{"speed_x": 1}')
    readme.write_text(BLOCK)
    p = run_tool("results", "--check", root=fixture_repo)
    assert p.returncode == 1 and "not a results file" in p.stdout


def test_check_fails_on_results_git_does_not_track(fixture_repo):
    setup_readme(fixture_repo)
    assert run_tool("results", root=fixture_repo).returncode == 0

    def git(*args):
        subprocess.run(["git", "-C", str(fixture_repo), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", "packages/tiny/README.md", "packages/tiny/results/bench.json")
    p = run_tool("results", "--check", root=fixture_repo)
    assert p.returncode == 1 and "study.json: not committed" in p.stdout
    assert "bench.json: not committed" not in p.stdout
    git("add", "packages/tiny/results/study.json")
    assert run_tool("results", "--check", root=fixture_repo).returncode == 0


def test_a_pending_section_stays_empty_until_its_results_exist(fixture_repo):
    readme = setup_readme(fixture_repo, BLOCK + """
<!-- results pending c=results/core.json
| overhead | {c.overhead_pct:.1f} % |
-->
<!-- /results -->
""")
    assert run_tool("results", root=fixture_repo).returncode == 0
    assert run_tool("results", "--check", root=fixture_repo).returncode == 0
    readme.write_text(readme.read_text().replace("-->\n<!-- /results -->\n",
                                                 "-->\n| overhead | 3 % |\n<!-- /results -->\n"))
    p = run_tool("results", "--check", root=fixture_repo)
    assert p.returncode == 1 and "pending section shows nothing" in p.stdout
    readme.write_text(readme.read_text().replace("| overhead | 3 % |\n", ""))
    write_results_file(fixture_repo / "packages" / "tiny" / "results" / "core.json",
                       {"overhead_pct": 2.04})
    p = run_tool("results", "--check", root=fixture_repo)
    assert p.returncode == 1 and "remove 'pending'" in p.stdout
    readme.write_text(readme.read_text().replace("results pending c=", "results c="))
    assert run_tool("results", root=fixture_repo).returncode == 0
    assert "| overhead | 2.0 % |" in readme.read_text()


def test_package_option_checks_only_that_readme(fixture_repo):
    setup_readme(fixture_repo)  # tiny's README is stale
    small = fixture_repo / "packages" / "small" / "README.md"
    small.write_text("<!-- results x=results/none.json: {x.a} --><!-- /results -->\n")
    assert run_tool("results", "--check", "--package", "tiny", root=fixture_repo
                    ).returncode == 1
    assert run_tool("results", root=fixture_repo, ).returncode == 1  # small's file is missing
    assert run_tool("results", "--package", "tiny", root=fixture_repo).returncode == 0
    assert run_tool("results", "--check", "--package", "tiny", root=fixture_repo
                    ).returncode == 0
    p = run_tool("test", "--only", "results", "--package", "tiny", root=fixture_repo)
    assert p.returncode == 0 and "none.json" not in p.stdout, p.stdout
    p = run_tool("test", "--only", "results", "--package", "small", root=fixture_repo)
    assert p.returncode == 1 and "none.json: no such results file" in p.stdout
