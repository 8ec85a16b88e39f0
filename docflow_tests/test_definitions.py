"""All definitions load, and each asset declares its retry policy, pool and Kubernetes resources."""

import json

import dagster as dg

from docflow.defs import build_defs
from docflow.settings import get_settings

ASSET_NAMES = ["raw_file", "classification", "parsed_markdown", "extracted_fields", "embeddings"]


def test_definitions_load_with_five_partitioned_assets_a_job_and_the_sensor() -> None:
    defs = build_defs(get_settings())
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    # the five per-document assets, the reconciliation report and the daily usage
    assert keys == {*ASSET_NAMES, "document_report", "usage_daily"}
    assert defs.resolve_job_def("process_documents") is not None
    assert defs.resolve_sensor_def("s3_document_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    usage = defs.resolve_schedule_def("usage_daily_schedule")
    assert usage.default_status == dg.DefaultScheduleStatus.RUNNING and usage.job_name == "usage_daily_job"
    lineage = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys}
        for k in graph.get_all_asset_keys()
    }
    assert lineage["extracted_fields"] == {"classification", "parsed_markdown"}
    assert lineage["classification"] == {"raw_file"}


def test_the_module_the_workspace_loads_is_valid() -> None:
    from docflow import definitions

    loaded = definitions.defs
    assert isinstance(loaded, dg.Definitions) or hasattr(loaded, "load_fn")


def test_each_asset_has_its_own_retry_policy_pool_and_k8s_resources() -> None:
    from docflow.defs.assets import build_assets

    pools, policies = set(), set()
    for asset in build_assets(get_settings()):
        node = asset.node_def
        policy = node.retry_policy
        assert policy is not None and policy.max_retries >= 2
        assert policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter == dg.Jitter.PLUS_MINUS
        k8s = node.tags["dagster-k8s/config"]  # Dagster stores non-string tag values as JSON
        resources = (json.loads(k8s) if isinstance(k8s, str) else k8s)["container_config"]["resources"]
        assert set(resources) == {"requests", "limits"}
        pools.add(node.pool)
        policies.add((policy.max_retries, policy.delay))
        assert asset.partitions_def is not None
    assert len(pools) >= 3 and None not in pools
    assert len(policies) >= 3
