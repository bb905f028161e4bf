"""The pytest plugin without building a lab: it is installed through the ``pytest11`` entry
point, adds its options and marker, and refuses a test it cannot serve with a clear message.
(tests/lab/test_pytest_plugin.py runs real labs through it.)"""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]


def test_registered_through_the_pytest11_entry_point() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert found.get("netlab") == "netlab.pytest_plugin"


def test_options_and_marker_are_there_without_asking(pytester: pytest.Pytester) -> None:
    helped = pytester.runpytest("--help")
    text = helped.stdout.str()
    assert "--netlab-mode=MODE" in text
    assert "--netlab-keep-on-failure" in text
    markers = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.netlab(scenario, mode=None, name=None)" in markers


def test_the_fixture_needs_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_unmarked(netlab_lab):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs @pytest.mark.netlab(scenario=...)*"])


def test_an_invalid_scenario_fails_the_test_with_its_errors(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        bad="apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 0}]}\n",
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.netlab(scenario="bad.yaml")
        def test_web(netlab_lab):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad.yaml is not a valid scenario*", "*bad.yaml:4:*"])


def test_an_unknown_mode_is_refused_up_front(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--netlab-mode", "ebpff")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--netlab-mode: unknown proxy mode 'ebpff'*"])


def test_a_suite_without_netlab_is_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["plugins: *netlab-*"])
    assert "netlab:" not in result.stdout.str()
