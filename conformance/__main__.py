"""``python -m conformance``: the commands around the pytest suite."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from conformance.profile import ProfileError, display, load_profile, read_raw, resolve_profile_path

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"


def _profile_check(args: argparse.Namespace) -> int:
    try:
        path = resolve_profile_path(args.profile, PROFILES_DIR)
        env = None
        if read_raw(path).get("sandbox") is True:
            from conformance import sandbox  # noqa: PLC0415 - only sandbox profiles need it

            running = sandbox.attached()
            if running is None:
                print(f"{display(path)}: a sandbox profile; start it first: python -m conformance sandbox up")
                return 4
            env = {**os.environ, **running}
        loaded = load_profile(path, env)
    except ProfileError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return 4
    profile = loaded.profile
    print(f"{display(path)}: OK ({profile.platform} + {profile.orchestrator}, guide {profile.guide_version})")
    for endpoint in profile.endpoints():
        print(f"  endpoint {endpoint.name}: {endpoint.url}")
    secret_fields = sorted(set(loaded.secrets.needles.values()))
    print(f"  secrets resolved: {', '.join(secret_fields) if secret_fields else 'none'}")
    return 0


def _sandbox_up(args: argparse.Namespace) -> int:
    from conformance.sandbox import Sandbox  # noqa: PLC0415 - heavy, and only for this command

    sandbox = Sandbox().start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        for key, value in sorted(sandbox.env.items()):
            print(f"export {key}={shlex.quote(value)}")
        print("# sandbox running; in another shell: eval these lines, then pytest --profile sandbox", file=sys.stderr)
        print("# Ctrl-C stops it and removes its folder", file=sys.stderr)
        sys.stdout.flush()
        if args.env_file:
            Path(args.env_file).write_text(
                "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(sandbox.env.items()))
            )
        stop.wait()
    finally:
        sandbox.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    profile = commands.add_parser("profile", help="work with profiles")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True)
    check = profile_commands.add_parser("check", help="validate a profile and resolve its secrets")
    check.add_argument("profile", help="profile NAME (profiles/NAME.yaml) or PATH")
    check.set_defaults(func=_profile_check)

    sandbox = commands.add_parser("sandbox", help="the embedded platform on loopback")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    up = sandbox_commands.add_parser("up", help="start the sandbox, print its variables, run until Ctrl-C")
    up.add_argument("--env-file", help="also write the export lines to this file")
    up.set_defaults(func=_sandbox_up)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
