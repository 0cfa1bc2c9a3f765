"""The Argo CD ApplicationSet that rolls generated/kubernetes/<cluster> out (docs/examples/argocd-applicationset.yaml)
is checked against Argo CD's own ApplicationSet CRD, vendored from Argo CD v3.5.1 (tests/data/README.md), and
against netgen's output: its generators, evaluated on the example estate's generated/ folder, give one
Application per cluster, whose source folder is a kustomization of that cluster's NetworkPolicies.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import REPO_ROOT

APPLICATIONSET = REPO_ROOT / "docs" / "examples" / "argocd-applicationset.yaml"
CRD = REPO_ROOT / "tests" / "data" / "argocd-applicationset-crd-v3.5.1.yaml"
GENERATED = REPO_ROOT / "generated"


def strict(schema: dict) -> dict:
    """The CRD's schema with unknown fields refused, as the API server's strict field validation (kubectl's
    default) refuses them: every object that lists its properties and does not preserve unknown fields."""
    schema = copy.deepcopy(schema)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node \
                    and not node.get("x-kubernetes-preserve-unknown-fields"):
                node["additionalProperties"] = False
            stack.extend(node.get("properties", {}).values())
            stack.extend(v for k, v in node.items() if k != "properties" and isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(node)
    return schema


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    crd = yaml.load(CRD.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd["spec"]["names"]["kind"] == "ApplicationSet"
    (version,) = crd["spec"]["versions"]
    assert (crd["spec"]["group"], version["name"]) == ("argoproj.io", "v1alpha1")
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


def applicationset() -> dict:
    return yaml.safe_load(APPLICATIONSET.read_text())


def errors(validator, document) -> list[str]:
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))


def test_the_applicationset_matches_argo_cds_crd(validator):
    document = applicationset()
    assert document["apiVersion"] == "argoproj.io/v1alpha1" and document["kind"] == "ApplicationSet"
    assert errors(validator, document) == []


def test_the_crd_check_refuses_unknown_fields_and_wrong_types(validator):
    typo = applicationset()
    typo["spec"]["syncPolicy"] = {"preserveResourceOnDeletion": True}
    assert any("preserveResourceOnDeletion" in e for e in errors(validator, typo))
    wrong = applicationset()
    wrong["spec"]["generators"][0]["matrix"]["generators"][0]["git"]["directories"] = "generated/kubernetes/*"
    assert errors(validator, wrong)


def render(template, params: dict[str, str]):
    """Argo CD's Go templates as this file uses them: {{.a.b}} replaced, an unknown key an error (missingkey=error)."""
    if isinstance(template, dict):
        return {key: render(value, params) for key, value in template.items()}
    if isinstance(template, list):
        return [render(value, params) for value in template]
    if isinstance(template, str):
        return re.sub(r"\{\{\s*\.([\w.]+)\s*\}\}", lambda m: params[m.group(1)], template)
    return template


def test_the_applicationset_rolls_out_every_cluster_folder_netgen_writes():
    spec = applicationset()["spec"]
    assert spec["goTemplate"] is True and spec["goTemplateOptions"] == ["missingkey=error"]
    assert spec["syncPolicy"]["preserveResourcesOnDeletion"] is True
    (generator,) = spec["generators"]
    git, clusters = generator["matrix"]["generators"]
    (pattern,) = git["git"]["directories"]

    # Argo CD's git directory generator: every folder of the repository that the pattern matches.
    folders = sorted(p.relative_to(REPO_ROOT).as_posix() for p in GENERATED.rglob("*") if p.is_dir()
                     and fnmatch.fnmatch(p.relative_to(REPO_ROOT).as_posix(), pattern["path"])
                     and p.relative_to(REPO_ROOT).as_posix().count("/") == pattern["path"].count("/"))
    estate_clusters = sorted(doc["metadata"]["name"] for f in (REPO_ROOT / "specs").rglob("*.yaml")
                             for doc in yaml.safe_load_all(f.read_text()) if doc and doc.get("kind") == "Cluster")
    assert [Path(f).name for f in folders] == estate_clusters

    names = set()
    for folder in folders:
        params = {"path.path": folder, "path.basename": Path(folder).name}
        # The cluster generator selects the Argo CD cluster labelled with the folder's name.
        assert render(clusters["clusters"]["selector"], params) == {
            "matchLabels": {"netgen.dev/cluster": Path(folder).name}}
        params |= {"name": f"eks-{Path(folder).name}", "server": f"https://{Path(folder).name}.example"}
        application = render(spec["template"], params)
        name = application["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63 and name not in names
        names.add(name)
        assert application["spec"]["destination"] == {"server": params["server"]}
        assert application["spec"]["syncPolicy"]["automated"]["prune"] is True
        source = REPO_ROOT / application["spec"]["source"]["path"]
        kustomization = yaml.safe_load((source / "kustomization.yaml").read_text())
        policies = [yaml.safe_load((source / r).read_text()) for r in kustomization["resources"]]
        assert policies and all(p["kind"] == "NetworkPolicy" for p in policies)
