"""The man-page pairs: roff to words, deduplicated corpus, reproducible word2vec builds."""

import gzip
import json

import numpy as np
import pytest

from dldiy_core import UserError
from dldiy_muse.dictionary_files import read_dictionary
from dldiy_muse.manpages import (
    ALGORITHMS,
    MAN_PACKAGES,
    build_man_man,
    corpus,
    man_page_files,
    package_man_pages,
    roff_paragraphs,
)

MAN = r""".\" a comment line
.TH LS 1 "2024" "coreutils"
.SH NAME
ls \- list directory contents
.SH DESCRIPTION
List information about the \fIFILE\fRs (the current directory by default). \" trailing
.TP
.B \-a, \-\-all
do not ignore entries starting with \&.
.PP
It\(aqs a \fBfine\fP day, \s-1SMALL\s0 \(em not \*(lqquoted\*(rq.
.TS
tab(;);
l l.
alpha;beta
.TE

Blank lines end paragraphs too.
"""

MDOC = r""".Dd $Mdocdate: May 2 2024 $
.Dt CAT 1
.Sh NAME
.Nm cat
.Nd concatenate and print files
.Sh SYNOPSIS
.Nm
.Op Fl benstuv
.Ar
"""


def test_roff_to_paragraphs():
    assert list(roff_paragraphs(MAN)) == [
        ["name", "ls", "list", "directory", "contents"],
        ["description", "list", "information", "about", "the", "files", "the", "current",
         "directory", "by", "default"],
        ["a", "all", "do", "not", "ignore", "entries", "starting", "with"],
        ["it's", "a", "fine", "day", "small", "not", "quoted"],
        ["alpha", "beta"],  # tbl's option and format lines are not text
        ["blank", "lines", "end", "paragraphs", "too"]]
    assert list(roff_paragraphs(MDOC)) == [  # mdoc: called macros (Fl, Ar) are dropped
        ["name", "cat", "concatenate", "and", "print", "files"], ["synopsis", "benstuv"]]


def _fake_man(root, pages=80, seed=0):
    """Pages of random sentences over a small vocabulary, with shared boilerplate."""
    rng = np.random.default_rng(seed)
    vocab = [f"{a}{b}" for a in ("red", "blue", "green", "file", "user") for b in
             ("", "s", "ed", "ing", "er", "ly")]
    (root / "man1").mkdir(parents=True)
    for i in range(pages):
        lines = [f".TH P{i} 1", ".SH NAME", f"page \\- number {i}", ".SH DESCRIPTION"]
        for _ in range(12):
            lines += [" ".join(rng.choice(vocab, 25)), ".PP"]
        lines += ["Report bugs to the maintainers of this package."]  # repeated everywhere
        data = gzip.compress("\n".join(lines).encode())
        (root / "man1" / f"p{i:03d}.1.gz").write_bytes(data)
    (root / "man1" / "link.1.gz").write_bytes(gzip.compress(b".so man1/p000.1\n"))
    (root / "man1" / "broken.1.gz").write_bytes(b"not gzip")


def test_corpus_deduplicates_and_splits_pages(tmp_path):
    _fake_man(tmp_path)
    files = man_page_files(tmp_path)
    (one,), stats = corpus(files, 10**9)
    assert stats["pages"] == 80  # the .so link and the unreadable page are skipped
    # kept once each: the bug-report line and the NAME line ("page number": digits dropped)
    assert stats["duplicates"] == 2 * 79
    assert sum(map(len, one)) == stats["tokens"][0]
    (even, odd), halves = corpus(files, 10**9, parts=2)
    assert halves["sha256"] == stats["sha256"] and sum(halves["tokens"]) == stats["tokens"][0]
    assert not {tuple(p) for p in even} & {tuple(p) for p in odd}
    (capped,), few = corpus(files, 1000)
    assert 1000 <= few["tokens"][0] < 1500 and few["pages"] < 10
    with pytest.raises(UserError, match="no man pages found"):
        man_page_files(tmp_path / "nowhere")


def test_man_man_build_is_reproducible(tmp_path):
    _fake_man(tmp_path / "man")
    a = build_man_man(tmp_path / "a", dim=8, man=tmp_path / "man")
    b = build_man_man(tmp_path / "b", dim=8, man=tmp_path / "man")
    meta = json.loads((a / "meta.json").read_text())
    for name in ("even.npy", "odd.npy"):
        assert np.array_equal(np.load(a / name), np.load(b / name))  # same seed, same vectors
    assert np.load(a / "even.npy").shape == (meta["even_words"], 8)
    assert not np.array_equal(np.load(a / "even.npy"), np.load(a / "odd.npy"))
    train, test = read_dictionary(a / "train.txt"), read_dictionary(a / "test.txt")
    assert all(s == t for s, t in train + test) and len(test) == meta["test_pairs"] > 0
    assert not {s for s, _ in train} & {s for s, _ in test}
    mtime = (a / "meta.json").stat().st_mtime_ns
    assert build_man_man(tmp_path / "a", dim=8, man=tmp_path / "man") == a
    assert (a / "meta.json").stat().st_mtime_ns == mtime  # cached: not rebuilt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "man"]
    # the cache is keyed by the pages' bytes, not only the build parameters
    page = tmp_path / "man" / "man1" / "p001.1.gz"
    page.write_bytes(gzip.compress(b".TH P1 1\n.SH NAME\nanother text altogether\n"))
    assert build_man_man(tmp_path / "a", dim=8, man=tmp_path / "man") == a
    again = json.loads((a / "meta.json").read_text())
    assert (a / "meta.json").stat().st_mtime_ns != mtime
    assert again["params"]["sources"] != meta["params"]["sources"]
    assert again["corpus"]["sha256"] != meta["corpus"]["sha256"]


def test_man_pairs_by_another_algorithm(tmp_path):
    """man-cbow / man-fasttext: the same even side, the odd side by another algorithm."""
    _fake_man(tmp_path / "man")
    same = build_man_man(tmp_path / "sg", dim=8, man=tmp_path / "man")
    for odd in ("cbow", "fasttext"):
        other = build_man_man(tmp_path / odd, dim=8, man=tmp_path / "man", odd=odd)
        assert json.loads((other / "meta.json").read_text())["params"]["odd"] == ALGORITHMS[odd]
        assert np.array_equal(np.load(same / "even.npy"), np.load(other / "even.npy"))
        assert not np.array_equal(np.load(same / "odd.npy"), np.load(other / "odd.npy"))
    with pytest.raises(UserError, match="algorithm 'glove': expected one of skipgram"):
        build_man_man(tmp_path / "x", dim=8, man=tmp_path / "man", odd="glove")


@pytest.mark.integration
def test_man_pages_come_from_the_listed_packages_only():
    import subprocess

    listed = subprocess.run(["dpkg-query", "-L", "manpages"], capture_output=True, text=True,
                            check=True).stdout.split("\n")
    pages = package_man_pages(("manpages",))
    assert pages == sorted(pages) and len(pages) > 100
    assert {str(p) for p in pages} <= set(listed)
    assert all(p.parts[:4] == ("/", "usr", "share", "man") and p.parts[4].startswith("man")
               for p in pages)  # English sections only, no translations
    everything = package_man_pages(MAN_PACKAGES)
    assert set(pages) < set(everything)
    with pytest.raises(UserError, match=r"^Debian package dldiy-no-such-package: not "
                                        r"installed \(apt-get install manpages "
                                        r"dldiy-no-such-package\)$"):
        package_man_pages(("manpages", "dldiy-no-such-package"))


@pytest.mark.slow
@pytest.mark.integration
def test_real_man_page_pairs(tmp_path):
    """The real builds (a few minutes the first time, cached after), then a short adversarial
    run from the CLI on man-man: its history has what the demo plots."""
    from dldiy_core.testing import run_cli
    from dldiy_muse.cli import main
    from dldiy_muse.pipeline import build_pair, load_run

    for name, stems in (("en-en", ("en", "man")), ("man-man", ("even", "odd"))):
        folder = build_pair(name)
        meta = json.loads((folder / "meta.json").read_text())
        # the sizes depend on the man pages installed; the split itself must be sound
        assert 0 < meta["test_pairs"] <= 1500 and meta["train_pairs"] > meta["test_pairs"]
        for stem in stems:
            assert np.load(folder / f"{stem}.npy", mmap_mode="r").shape[1] == 50
    run = tmp_path / "run"
    short = ["--set", "adversarial.epochs=2", "--set", "adversarial.epoch_size=200",
             "--set", "refine.iterations=1"]
    result = run_cli(main, ["align", "--mode", "unsupervised", "--init", "adversarial",
                            "--pair", "man-man", "--out", str(run), *short])
    assert result.code == 0 and "unsupervised (adversarial)" in result.out, result.err
    _, alignment = load_run(run)
    steps = [h for h in alignment.history if h["step"] == "adversarial"]
    assert len(steps) == 4 and all("dis_acc" in h for h in steps)
    assert [h["epoch"] for h in alignment.history if "lr" in h] == [0, 1, 2]
