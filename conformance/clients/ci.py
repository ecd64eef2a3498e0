"""HOW to read the project's GitLab CI/CD: its runners and GitLab's CI lint. Never asserts.

It talks through the GitLab client's API connection (:class:`conformance.clients.gitlab.GitLabClient`:
the profile's token, timeout and trust, one try per request, answers as ``Reply``).

* Runners: ``GET /projects/:id/runners`` lists the project runners, the runners of its groups and
  every instance runner (``Ci::Runner.owned_or_instance_wide``), whatever the project's
  ``shared_runners_enabled``; listing needs ``read_project_runners`` (the Maintainer role).
  ``tag_list=a,b`` keeps the runners that have *all* these tags (``tagged_with``), which is how
  GitLab matches a tagged job to a runner. ``GET /runners/:id`` adds ``tag_list`` and
  ``run_untagged`` (gitlabhq lib/api/ci/runners.rb, lib/api/entities/ci/runner*.rb, 13.x to 17.x).
* Lint: ``GET /projects/:id/ci/lint`` lints the project's CI configuration on the head of its default
  branch (static check): ``valid``, ``errors``, ``warnings``, ``merged_yaml``, ``includes``
  (gitlabhq lib/api/lint.rb, lib/api/entities/ci/lint/result.rb). The instance-wide ``POST /ci/lint``
  was removed in GitLab 16.0 and is not used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.checks import CannotEvaluate
from conformance.clients import gitlab
from conformance.profile import Ci, Profile

PER_PAGE = 100  # GitLab's largest page
MAX_PAGES = 5  # 500 runners: more than any project sees; each page one bounded request
MAX_DETAILS = 20  # GET /runners/:id calls for run_untagged, at most


@dataclass
class Runner:
    """One runner as ``GET /projects/:id/runners`` shows it (``Entities::Ci::Runner``)."""

    id: int
    name: str
    runner_type: str  # instance_type, group_type, project_type
    paused: bool
    online: bool
    status: str  # online, offline, stale, never_contacted (older GitLab: also active, paused)
    tags: list[str] | None = None  # from GET /runners/:id, when read
    run_untagged: bool | None = None

    @classmethod
    def of(cls, data: dict[str, Any]) -> Runner:
        # `paused` since GitLab 14.8; before it only `active`. `online` since 13.x; `status` always.
        paused = bool(data["paused"]) if "paused" in data else not data.get("active", True)
        status = str(data.get("status") or "")
        online = bool(data["online"]) if data.get("online") is not None else status == "online"
        name = str(data.get("description") or data.get("name") or "")
        return cls(int(data["id"]), name, str(data.get("runner_type") or ""), paused, online, status)

    def describe(self) -> str:
        kind = {"instance_type": "instance", "group_type": "group", "project_type": "project"}
        state = "paused" if self.paused else (self.status or ("online" if self.online else "offline"))
        tags = f", tags {', '.join(self.tags) or 'none'}" if self.tags is not None else ""
        scope = kind.get(self.runner_type, self.runner_type)
        what = f"{scope} runner" if scope else "runner"
        return f"#{self.id} {self.name or '(no description)'} ({what}, {state}{tags})"


@dataclass
class RunnerListing:
    """The runners a project sees: all of them, and those with every wanted tag (None: the listing failed)."""

    reply: gitlab.Reply
    runners: list[Runner] = field(default_factory=list)
    tagged: list[Runner] = field(default_factory=list)


class CiClient:
    """GitLab CI/CD for the profile's project, through the GitLab client's connection."""

    def __init__(self, section: Ci, api: gitlab.GitLabClient) -> None:
        self.section = section
        self.gitlab = api

    @property
    def project_path(self) -> str:
        return f"/projects/{self.gitlab.project_id}"

    def _runner_pages(self, **query: Any) -> tuple[gitlab.Reply, list[dict[str, Any]]]:
        found: list[dict[str, Any]] = []
        reply = self.gitlab.get(f"{self.project_path}/runners", per_page=PER_PAGE, **query)
        for page in range(2, MAX_PAGES + 2):
            if not reply.ok or not isinstance(reply.data, list):
                return reply, found
            found += [r for r in reply.data if isinstance(r, dict) and "id" in r]
            if len(reply.data) < PER_PAGE or page > MAX_PAGES:
                break
            reply = self.gitlab.get(f"{self.project_path}/runners", per_page=PER_PAGE, page=page, **query)
        return reply, found

    def runners(self, tags: list[str]) -> RunnerListing:
        """The project's runners, and those tagged with all of ``tags`` (with ``run_untagged`` read when
        ``tags`` is empty: an untagged job runs only there)."""
        reply, every = self._runner_pages()
        listing = RunnerListing(reply, [Runner.of(r) for r in every])
        if not reply.ok:
            return listing
        if tags:
            tagged_reply, tagged = self._runner_pages(tag_list=",".join(tags))
            if not tagged_reply.ok:
                listing.reply = tagged_reply
                return listing
            listing.tagged = [Runner.of(r) for r in tagged]
            return listing
        for runner in listing.runners[:MAX_DETAILS]:
            details = self.gitlab.get(f"/runners/{runner.id}")
            if details.ok and isinstance(details.data, dict):
                runner.tags = [str(t) for t in details.data.get("tag_list") or []]
                runner.run_untagged = bool(details.data.get("run_untagged"))
        listing.tagged = [r for r in listing.runners if r.run_untagged]
        return listing

    def lint(self) -> gitlab.Reply:
        """GitLab's CI lint of the project's configuration on its default branch (static check)."""
        reply = self.gitlab.get(f"{self.project_path}/ci/lint")
        if reply.ok and not isinstance(reply.data, dict):
            reply.error, reply.data = "answer is not a lint result", None
        return reply


def connect(profile: Profile, run_id: str) -> CiClient:
    """The client; it talks to nothing until a check asks."""
    if profile.ci is None:
        raise CannotEvaluate("the profile has no ci section")
    return CiClient(profile.ci, gitlab.connect(profile, run_id))
