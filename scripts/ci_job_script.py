"""Write the GitLab CI template's job as gitlab-emulator would run it: its shell script and variables.

``scripts/test-image.sh`` runs them inside the suite's image (gitlab-emulator's docker executor needs
a Docker engine; its shell executor would run on the host). gitlab-emulator resolves the job
(``extends``, the template's ``variables``, the CI_* variables a runner sets) and makes the script
(``set -e`` then the job's lines); the image supplies the rest of the environment, as a runner's
docker executor does.

    python scripts/ci_job_script.py PROJECT_DIR SCRIPT_OUT ENV_OUT [NAME=VALUE ...]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gitlabemu import configloader, jobs  # type: ignore[import-untyped]  # dev tool without type hints

JOB = "conformance"


def main(argv: list[str]) -> int:
    project, script_out, env_out, *assignments = argv
    extra = dict(item.split("=", 1) for item in assignments)
    os.chdir(project)
    loader = configloader.Loader()
    loader.config[".gle-extra_variables"] = extra
    loader.load(".gitlab-ci.yml")
    job = loader.load_job(JOB)
    variables = {**job.base_variables(), **job.variables, **job.extra_variables}
    Path(script_out).write_text(jobs.make_script(job.before_script + job.script) + "\n")
    Path(env_out).write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
