"""Serving (SRV): the suite's probe app as a Deployment and Service, reached through the API server's service proxy.

The Kubernetes calls are in ``conformance/clients/kubernetes.py`` (section "serving"); this module
binds them to the profile: the connected KubernetesClient client, ``serving.image``, and the run's names. On
Run:ai too this is a plain Deployment (the kubeconfig CLI has no inference workload, and the new
CLI's ``runai inference submit`` needs Knative serving on the cluster, which the guide does not
set up): the user's Kubernetes permissions in the project namespace are what it needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from conformance.checks import CannotEvaluate
from conformance.cleanup import Swept, eligible
from conformance.clients import kubernetes
from conformance.profile import Profile, Serving


@dataclass
class ServingClient:
    kube: kubernetes.KubernetesClient
    section: Serving

    @property
    def name(self) -> str:
        return kubernetes.serving_name(self.kube)

    @property
    def namespace(self) -> str:
        return self.kube.namespace


def connect(profile: Profile, run_id: str) -> ServingClient:
    return ServingClient(kubernetes.connect(profile, run_id), profile.serving)


def sweep(profile: Profile, older_than: dt.datetime, dry_run: bool) -> Swept:
    """Delete the serving probes (Deployment with its pods, Service) named by runs before ``older_than``."""
    kube = kubernetes.connect(profile, "cleanup")
    found, failure = kubernetes.list_serving(kube)
    if failure is not None:
        raise CannotEvaluate(f"listing Deployments and Services in namespace {kube.namespace}: {failure.summary()}")
    swept = Swept()
    for name in sorted({name for _, name in found if eligible(name, older_than)}):
        kinds = sorted(kind for kind, other in found if other == name)
        where = f"{' and '.join(kinds)} {kube.namespace}/{name}"
        problems = [] if dry_run else kubernetes.delete_serving(kube, name)
        if problems:
            swept.failures.append(f"{where} ({'; '.join(problems)})")
        else:
            swept.items.append(where)
    return swept
