"""``conformance`` (or ``python -m conformance``): the commands around the pytest suite."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from conformance.profile import LoadedProfile, ProfileError, display, requirements
from conformance.session import open_profile


def _attach_sandbox(path: Path) -> dict[str, str]:
    """A sandbox profile runs against the running sandbox's variables."""
    from conformance import sandbox  # noqa: PLC0415 - only sandbox profiles need it

    running = sandbox.attached()
    if running is None:
        raise ProfileError([f"{display(path)}: a sandbox profile; start it first: python -m conformance sandbox up"])
    return running


def load(ref: str) -> LoadedProfile:
    """Open a profile by NAME (in the checkout's profiles/) or PATH, as a run would (conformance/session.py)."""
    return open_profile(ref, sandbox=_attach_sandbox)


def _fail(exc: ProfileError) -> int:
    for line in exc.lines:
        print(line, file=sys.stderr)
    return 4


def _profile_check(args: argparse.Namespace) -> int:
    from conformance import offline  # noqa: PLC0415 - only this command needs it
    from conformance.waivers import load_waivers  # noqa: PLC0415 - only this command needs it

    try:
        loaded = load(args.profile)
        waivers = load_waivers(loaded.profile.waivers) if loaded.profile.waivers is not None else None
        missing = requirements(loaded.profile)  # every component of its platform and orchestrator
        if missing:
            raise ProfileError([f"{display(loaded.path)}: {line}" for line in missing])
    except ProfileError as exc:
        return _fail(exc)
    profile = loaded.profile
    print(f"{display(loaded.path)}: OK ({profile.platform} + {profile.orchestrator}, guide {profile.guide_version})")
    for line in offline.warnings(profile, loaded.raw):  # this machine's files: never an error
        print(f"  {line}")
    for endpoint in profile.endpoints():
        print(f"  endpoint {endpoint.name}: {endpoint.url}")
    if waivers is not None:
        print(f"  waivers: {len(waivers)} in {display(Path(str(profile.waivers)))}")
    secret_fields = sorted(set(loaded.secrets.needles.values()))
    print(f"  secrets resolved: {', '.join(secret_fields) if secret_fields else 'none'}")
    return 0


def _profile_fields(args: argparse.Namespace) -> int:
    from conformance import fields  # noqa: PLC0415 - only this command needs it

    print(fields.markdown() if args.markdown else fields.text())
    return 0


def _checks(args: argparse.Namespace) -> int:
    from conformance import catalogue  # noqa: PLC0415 - only this command needs it

    print(catalogue.markdown() if args.markdown else catalogue.text())
    return 0


def _init(args: argparse.Namespace) -> int:
    import tempfile  # noqa: PLC0415 - only this command needs these

    from conformance.init import draft_profile  # noqa: PLC0415

    draft = draft_profile(Path.home(), os.environ, Path.cwd())
    text = draft.render()
    target = Path(args.output) if args.output else None
    if target is not None and target.exists() and not args.force:
        print(f"{target}: exists; pass --force to overwrite", file=sys.stderr)
        return 4
    with tempfile.TemporaryDirectory() as scratch:
        check_path = target or Path(scratch) / "draft.yaml"
        check_path.write_text(text)
        try:
            loaded = open_profile(check_path)
            missing = requirements(loaded.profile)
            if missing:
                raise ProfileError(missing)
        except ProfileError as exc:  # a draft that does not load is a bug here, not the user's
            for line in exc.lines:
                print(f"draft does not pass profile check: {line}", file=sys.stderr)
            return 1
    if target is None:
        print(text, end="")
    else:
        print(f"wrote {target}: it passes profile check; review it and replace the change-me values")
    for note in draft.notes:
        print(f"  {note}", file=sys.stderr)
    return 0


def _incluster(args: argparse.Namespace) -> int:
    from conformance import incluster  # noqa: PLC0415 - only this command needs it

    try:
        loaded = load(args.profile)
    except ProfileError as exc:
        return _fail(exc)
    section = loaded.profile.kubernetes
    namespace = args.namespace or (section.namespace if section else None)
    if not namespace:
        print(f"{display(loaded.path)}: no kubernetes.namespace in the profile; pass --namespace", file=sys.stderr)
        return 4
    secrets = []
    for item in args.secret:
        name, sep, mount = item.partition(":")
        if not sep or not name or not mount.startswith("/"):
            print(f"--secret {item!r}: expected NAME:/mount/path", file=sys.stderr)
            return 4
        secrets.append((name, mount))
    spec = incluster.InClusterSpec(
        loaded=loaded,
        namespace=namespace,
        image=args.image,
        service_account=args.service_account,
        pvc=args.pvc or (section.pvc if section else None),
        secrets=secrets,
        env_secrets=args.env_secret,
        markers=args.markers,
        uid=args.uid,
    )
    text = incluster.render(spec)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}: kubectl apply -f {args.output}")
    else:
        print(text, end="")
    project = args.runai_project or (loaded.profile.runai.project if loaded.profile.runai else None)
    if project:
        print(f"# or, through Run:ai:\n# {incluster.runai_command(spec, project)}", file=sys.stderr)
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    from conformance import cleanup  # noqa: PLC0415 - only this command needs it

    try:
        age = cleanup.parse_duration(args.older_than)
    except ValueError as exc:
        print(f"--older-than: {exc}", file=sys.stderr)
        return 2
    try:
        loaded = load(args.profile)
    except ProfileError as exc:
        return _fail(exc)
    return cleanup.command(loaded, age, args.dry_run)


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


def _diff(args: argparse.Namespace) -> int:
    from conformance import fleet  # noqa: PLC0415 - only this command needs it

    return fleet.diff_command(Path(args.a), Path(args.b), as_json=args.json, show_all=args.all)


def _merge(args: argparse.Namespace) -> int:
    from conformance import fleet  # noqa: PLC0415 - only this command needs it

    return fleet.merge_command([Path(p) for p in args.results], output=args.output, json_output=args.json)


def _bundle(args: argparse.Namespace) -> int:
    from conformance import bundle  # noqa: PLC0415 - only this command needs it

    try:
        loaded = load(args.profile) if args.profile else None
    except ProfileError as exc:
        return _fail(exc)
    owners = Path(args.owners) if args.owners else None
    output = Path(args.output) if args.output else None
    return bundle.bundle_command(Path(args.results), output=output, loaded=loaded, owners_path=owners)


def _add_fleet_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    diff = commands.add_parser(
        "diff",
        help="checks that pass in one results file and fail in the other (laptop vs pod, run vs run)",
        description="Compare two JSON results files by check id and parameter. "
        "Exit 0: no check passes on one side and fails on the other; 1: some do; 2: unusable input.",
    )
    diff.add_argument("a", metavar="A.json", help="results file A (e.g. from a laptop)")
    diff.add_argument("b", metavar="B.json", help="results file B (e.g. from a pod)")
    diff.add_argument("--json", action="store_true", help="print the differences as JSON (conformance-diff/1)")
    diff.add_argument("--all", action="store_true", help="also list other outcome changes (skipped, absent)")
    diff.set_defaults(func=_diff)

    merge = commands.add_parser(
        "merge",
        help="one self-contained HTML page over many results files (component x environment, trend)",
        description="Merge results files (or folders of them) into a fleet page: a matrix of component x "
        "environment (profile + vantage), each cell the worst outcome of the environment's latest run "
        "(error > failed > xpassed > passed > xfailed > skipped), linked to its failures, and a trend per "
        "environment. Unreadable files are skipped with a warning. Exit 0 when the output was written; 2 when "
        "no file was readable or the output could not be written.",
    )
    merge.add_argument("results", nargs="+", metavar="RESULTS", help="JSON results files, or folders of them")
    merge.add_argument("-o", "--output", help="HTML page to write (default: fleet.html, unless only --json)")
    merge.add_argument(
        "--json", nargs="?", const="-", metavar="PATH", help="also write the matrix as JSON (to stdout without PATH)"
    )
    merge.set_defaults(func=_merge)

    bundle = commands.add_parser(
        "bundle",
        help="one archive for a support ticket: HTML, JUnit, JSON, summary.txt, SHA256SUMS",
        description="Bundle a run's reports (found next to its JSON, same stem) with a summary to paste into a "
        "ticket, after scanning every member for secrets. Exit 0: written; 1: a secret was found, nothing "
        "written; 2: unusable input; 4: broken profile.",
    )
    bundle.add_argument("results", metavar="RUN.json", help="the run's JSON results file")
    bundle.add_argument("-o", "--output", help="archive to write (default: <RUN>-bundle.tar.gz next to the JSON)")
    bundle.add_argument("--profile", help="profile NAME or PATH whose secrets the leak scan looks for")
    bundle.add_argument("--owners", metavar="owners.yaml", help="component -> 'team <contact>' mapping")
    bundle.set_defaults(func=_bundle)


def _prog() -> str:
    return "conformance" if Path(sys.argv[0]).name == "conformance" else "python -m conformance"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=_prog(), description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(  # listed for --help; main() hands `run ...` to conformance.runner before parsing
        "run",
        help="run the suite from any folder: conformance run --profile NAME|PATH [pytest args]",
        description="Run pytest on the suite, from any folder: profile, reports and waivers paths are taken "
        "from the current folder, reports go to ./reports unless --reports-dir, --html or --no-reports is given. "
        "Every other argument goes to pytest as it is (-m, -k, -n, ...). `conformance run --help` shows them.",
        add_help=False,
    )

    profile = commands.add_parser("profile", help="work with profiles")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True)
    check = profile_commands.add_parser("check", help="validate a profile and resolve its secrets")
    check.add_argument("profile", help="profile NAME (profiles/NAME.yaml) or PATH")
    check.set_defaults(func=_profile_check)
    fields = profile_commands.add_parser("fields", help="every profile field: type, default, what it is")
    fields.add_argument("--markdown", action="store_true", help="as a Markdown table (the README's field reference)")
    fields.set_defaults(func=_profile_fields)

    sandbox = commands.add_parser("sandbox", help="the embedded platform on loopback")
    sandbox_commands = sandbox.add_subparsers(dest="sandbox_command", required=True)
    up = sandbox_commands.add_parser("up", help="start the sandbox, print its variables, run until Ctrl-C")
    up.add_argument("--env-file", help="also write the export lines to this file")
    up.set_defaults(func=_sandbox_up)

    inc = commands.add_parser(
        "incluster", help="write a Job (and the runai submit command) that runs the suite inside the cluster"
    )
    inc.add_argument("--profile", required=True, help="profile NAME or PATH")
    inc.add_argument("--namespace", help="default: the profile's kubernetes.namespace")
    inc.add_argument("--image", default="registry.aisingapore.net/mlops/conformance-suite:0.1.0")
    inc.add_argument("--service-account", help="service account of the pod (default: the namespace's default)")
    inc.add_argument("--pvc", help="PVC where the reports are left (default: the profile's kubernetes.pvc)")
    inc.add_argument("--secret", action="append", default=[], metavar="NAME:/PATH", help="mount a secret's files")
    inc.add_argument("--env-secret", action="append", default=[], metavar="NAME", help="secret as environment")
    inc.add_argument("--markers", help="marker expression (default: '<platform> and <orchestrator>')")
    inc.add_argument("--uid", type=int, default=2222, help="user id of the pod (Run:ai and Coder use 2222)")
    inc.add_argument("--runai-project", help="default: the profile's runai.project")
    inc.add_argument("-o", "--output", help="write the manifests here instead of stdout")
    inc.set_defaults(func=_incluster)
    _add_fleet_commands(commands)

    checks = commands.add_parser("checks", help="list every check: id, component, what it checks, where it applies")
    checks.add_argument("--markdown", action="store_true", help="as a Markdown table (the README's catalogue)")
    checks.set_defaults(func=_checks)

    sweep = commands.add_parser(
        "cleanup",
        help="delete the probes (conformance-<run id>) that killed runs left behind",
        description="Delete what runs killed before their teardown left in each writing component: registry "
        "tags of <project_path>/conformance, objects <prefix>/conformance-<run id>*, MLflow runs tagged "
        "conformance=<run id> in the profile's experiment, Jobs conformance-<run id>* in the namespace, Run:ai "
        "jobs, <pvc>/workspaces/conformance-<run id>.probe. Only names carrying a run id in the suite's exact "
        "format (YYYYmmddHHMMSS-xxxxxx, UTC) whose run started more than --older-than ago are deleted. One line "
        "per deleted item, then a summary. Exit 0: every component swept; 1: one could not be; 2: bad "
        "duration; 4: broken profile.",
    )
    sweep.add_argument("--profile", required=True, help="profile NAME or PATH")
    sweep.add_argument(
        "--older-than", required=True, metavar="DURATION", help="only runs started longer ago: 30m, 6h, 2d"
    )
    sweep.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    sweep.set_defaults(func=_cleanup)

    init = commands.add_parser("init", help="draft a profile from this workspace (kubeconfig, AWS, docker, ...)")
    init.add_argument("-o", "--output", help="write the draft here (default: print it)")
    init.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    init.set_defaults(func=_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        from conformance import runner  # noqa: PLC0415 - only this command needs it

        return runner.run(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `... | head`: the reader has seen enough
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the interpreter's flush at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
