"""Talking to AWS (boto3): deploy, verify, drift, discover and import-grants.

Only the commands that talk to AWS import this package; `netgen validate` and `netgen build` never do, and need
neither boto3 nor credentials (tests/test_aws_deploy.py checks that build does not import boto3).

- session.py: boto3 clients per (account, region): a profile per account or the standard chain, retries.
- generated.py: reading generated/aws (the deploy plan and the templates) into plain records.
- deploy/: the deploy package, see its __init__.py: `netgen deploy`: preflight, change sets along the plan's
  dependency graph, every stack settled against EC2, cleanup.
- reachability.py: the evaluator (EC2 answers only, no netgen model), shared with the test judge.
- verify.py: `netgen verify`: intended flows reachable, no netgen rule granting more than the flows.
- coverage.py: how hand-made rules and routes stand against the grants (managed, adopted, covered, uncovered).
- drift.py: `netgen drift`: live rules, routes and peerings against generated/, in coverage.py's categories.
- discover.py: `netgen discover`: inventory spec files from what exists.
- import_grants.py: `netgen import-grants`: Grant documents that reproduce hand-made rules and flow-log records.
- grant_matching.py: which hand rules and flow-log records name a legacy host calling a service (for the import).
- flowlogs.py: VPC Flow Logs files (the default format) read for import-grants.
"""
