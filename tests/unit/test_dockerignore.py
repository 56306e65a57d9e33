""".dockerignore semantics, checked against Docker's documented behaviour
(docs.docker.com, "Build context" › ".dockerignore files") and moby/patternmatcher's rules."""
from __future__ import annotations

import pytest

from reconciler.image_build.dockerignore import BadPattern, Matcher, read_patterns


def included(lines: str, *paths: str) -> set[str]:
    matcher = Matcher.from_text(lines)
    return {path for path in paths if not matcher.excludes(path)}


def test_reading_skips_comments_and_blanks_and_cleans_each_pattern():
    text = "\ufeff# a comment\n\n  /foo/bar  \n!  ./docs/../README.md\n #not-a-comment\nsrc/\n"
    assert read_patterns(text) == ["foo/bar", "!README.md", "#not-a-comment", "src"]


@pytest.mark.parametrize("pattern", ["/foo/bar", "foo/bar", "./foo/bar", "foo//bar/"])
def test_leading_and_trailing_slashes_do_not_matter(pattern):
    assert included(pattern, "foo/bar", "foo/baz", "bar") == {"foo/baz", "bar"}


def test_docs_examples_of_star_and_question_mark():
    paths = ("somedir/temporary.txt", "somedir/temp/x", "somedir/subdir/temporary.txt", "tempa", "tempab", "temp")
    assert included("*/temp*", *paths) == {"somedir/subdir/temporary.txt", "tempa", "tempab", "temp"}
    assert included("*/*/temp*", *paths) == set(paths) - {"somedir/subdir/temporary.txt"}
    assert included("temp?", *paths) == set(paths) - {"tempa"}


def test_double_star_spans_any_number_of_directories_including_none():
    paths = ("main.go", "cmd/main.go", "a/b/c/util.go", "a/b/c/util.gox", "README")
    assert included("**/*.go", *paths) == {"a/b/c/util.gox", "README"}


@pytest.mark.parametrize("lines, kept", [
    ("*.md\n!README.md", {"README.md", "x.txt"}),
    ("*.md\n!README*.md\nREADME-secret.md", {"README.md", "README-public.md", "x.txt"}),
    ("*.md\nREADME-secret.md\n!README*.md", {"README.md", "README-public.md", "README-secret.md", "x.txt"}),
])
def test_the_last_matching_line_wins_so_bang_re_includes(lines, kept):
    paths = ("README.md", "README-public.md", "README-secret.md", "CHANGES.md", "x.txt")
    assert included(lines, *paths) == kept


def test_a_directory_pattern_covers_everything_under_it_and_bang_brings_a_file_back():
    paths = ("docs/README.md", "docs/api/index.md", "docsite/x", "src/docs/y")
    assert included("docs", *paths) == {"docsite/x", "src/docs/y"}
    assert included("docs\n!docs/README.md", *paths) == {"docs/README.md", "docsite/x", "src/docs/y"}
    assert included("docs/*\n!docs/README.md", *paths) == {"docs/README.md", "docsite/x", "src/docs/y"}
    # Patterns are rooted at the context: a directory of that name deeper down needs **/.
    assert included("**/docs", *paths) == {"docsite/x"}


@pytest.mark.parametrize("pattern, path, matches", [
    ("dir/**", "dir", False),
    ("dir/**", "dir/a/b", True),
    ("**/dir", "dir", True),
    ("**/dir", "x/dir/file", True),
    ("**", "anything/at/all", True),
    ("a[b-d]e", "ace", True),
    ("a[b-d]e", "aae", False),
    ("a[^b-d]e", "aze", True),
    (".*", ".env", True),
    (".*", "env", False),
    ("abc.def", "abcXdef", False),  # "." is literal
    ("a(b)c+d", "a(b)c+d", True),  # regexp characters are literal
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("a?c", "a/c", False),  # neither ? nor * crosses a /
    ("a*c", "a/c", False),
])
def test_single_pattern_matching(pattern, path, matches):
    assert Matcher([pattern]).excludes(path) is matches


@pytest.mark.parametrize("line", ["!", "[", "a[", "[]a]", "[-x]", "[x-]", "[a-b-c]", "abc\\"])
def test_patterns_docker_rejects_are_rejected(line):
    with pytest.raises(BadPattern):
        Matcher.from_text(line)


def test_an_excluded_directory_is_entered_only_when_a_bang_line_may_reach_inside():
    assert not Matcher.from_text("node_modules").must_enter("node_modules")
    literal = Matcher.from_text("node_modules\n.git\n!node_modules/keep.js")
    assert literal.must_enter("node_modules") and not literal.must_enter(".git")
    assert not literal.must_enter("node_modules/left-pad")
    # A wildcard exception could match anywhere: BuildKit walks every excluded directory.
    wildcard = Matcher.from_text(".git\n!**/keep.txt")
    assert wildcard.must_enter(".git")


def test_a_wildcard_bang_line_re_includes_deep_inside_an_excluded_directory():
    assert included("node_modules\n!**/keep.txt", "node_modules/a/b/keep.txt", "node_modules/a/other") == {
        "node_modules/a/b/keep.txt"}


def test_matching_with_the_parents_results_agrees_with_matching_from_scratch():
    matcher = Matcher.from_text("build\n!build/keep\n**/*.tmp\n!**/important.tmp")
    for path in ("build/keep/x.tmp", "build/keep/important.tmp", "build/other", "src/a.tmp", "src/b.py"):
        state = tuple(False for _ in matcher.patterns)
        parts = path.split("/")
        for depth in range(1, len(parts)):
            _, state = matcher.match("/".join(parts[:depth]), state)
        assert matcher.match(path, state)[0] == matcher.excludes(path), path
