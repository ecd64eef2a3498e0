"""``conformance run [pytest args]``: the suite from any folder.

pytest finds its root folder, ini options (the plugin, markers, ``testpaths``) and
``conftest.py`` from the folder it starts in, so the suite only ran from the checkout.
``run`` starts pytest in the suite's own folder with its ini file, after turning every
path the user gave (profile, reports, waivers, test files) into an absolute path taken
from the folder the user stands in. Reports go to ``./reports`` of that folder unless
``--reports-dir``, ``--html`` or ``--no-reports`` says otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from conformance.profile import PROFILE_SUFFIXES

SUITE_ROOT = Path(__file__).resolve().parent.parent
PATH_OPTIONS = frozenset(
    {"--profile", "--reports-dir", "--results-json", "--waivers", "--html", "--junitxml", "--junit-xml", "--css"}
)
REPORT_OPTIONS = frozenset({"--reports-dir", "--html", "--no-reports"})
ENV_PROFILE = "CONFORMANCE_PROFILE"


class RunError(Exception):
    """A command line ``run`` cannot hand to pytest; the message is one line."""


def is_profile_name(ref: str) -> bool:
    """``sandbox`` names ``profiles/sandbox.yaml``; anything with a slash or a suffix is a path."""
    return "/" not in ref and Path(ref).suffix not in PROFILE_SUFFIXES


def _absolute(value: str, cwd: Path) -> str:
    return str((cwd / os.path.expanduser(value)).resolve()) if value else value


def _option_value(name: str, value: str, cwd: Path) -> str:
    if name == "--profile" and is_profile_name(value):
        return value
    return _absolute(value, cwd)


def _positional(arg: str, cwd: Path, root: Path) -> str:
    """A test path given relative to where the user stands, unless it names one of the suite's own."""
    head, sep, rest = arg.partition("::")
    if not (head.endswith(".py") or "/" in head) or (root / head).exists() or not (cwd / head).exists():
        return arg
    return _absolute(head, cwd) + sep + rest


def suite_root(root: Path = SUITE_ROOT) -> Path:
    """The checkout the suite runs from: the package's parent, with the suite's ini file and conftest."""
    if not (root / "pyproject.toml").is_file() or not (root / "conftest.py").is_file():
        raise RunError(
            f"{root}: not the suite's checkout (no pyproject.toml and conftest.py next to the package): "
            "install it from the checkout with `pip install --no-deps -e .` (scripts/install-workspace.sh does)"
        )
    return root


def pytest_argv(args: Sequence[str], cwd: Path, root: Path = SUITE_ROOT) -> list[str]:
    """pytest's arguments for ``conformance run ARGS`` typed in ``cwd``, to run in ``root``."""
    out = ["-c", str(root / "pyproject.toml"), f"--rootdir={root}"]
    given: set[str] = set()
    items = list(args)
    i = 0
    while i < len(items):
        arg = items[i]
        name, eq, value = arg.partition("=")
        if arg == "--":
            out.extend(_positional(a, cwd, root) for a in items[i + 1 :])
            break
        if name in PATH_OPTIONS:
            if not eq:
                if i + 1 >= len(items):
                    raise RunError(f"{name} needs a value")
                i += 1
                value = items[i]
            given.add(name)
            out.append(f"{name}={_option_value(name, value, cwd)}")
        elif arg.startswith("-"):
            given.add(name)
            out.append(arg)
        else:
            out.append(_positional(arg, cwd, root))
        i += 1
    if not given & REPORT_OPTIONS:
        out.append(f"--reports-dir={cwd / 'reports'}")
    return out


def child_env(environ: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """The environment for pytest: a profile path in $CONFORMANCE_PROFILE made absolute too."""
    env = dict(environ)
    ref = env.get(ENV_PROFILE)
    if ref and not is_profile_name(ref):
        env[ENV_PROFILE] = _absolute(ref, cwd)
    return env


def run(args: Sequence[str]) -> int:
    """Replace this process by pytest in the suite's folder (signals and exit code go straight to it)."""
    cwd = Path.cwd()
    try:
        root = suite_root()
        argv = pytest_argv(args, cwd, root)
    except RunError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 4
    env = child_env(os.environ, cwd)
    os.chdir(root)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "pytest", *argv], env)  # noqa: S606 - pytest, by design
