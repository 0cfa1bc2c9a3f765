"""Talking to AWS (boto3): deploy, verify, drift and discover.

Only the commands that talk to AWS import this package; `netgen validate` and `netgen build` never do, and need
neither boto3 nor credentials (tests/test_aws_cli.py checks that build does not import boto3).

- session.py: boto3 clients per (account, region): a profile per account or the standard chain, retries.
- generated.py: reading generated/aws (the deploy plan and the templates) into plain records.
- deploy.py: `netgen deploy`: change sets in plan order, then every stack checked against EC2.
- reachability.py: the evaluator (EC2 answers only, no netgen model), shared with the test judge.
- verify.py: `netgen verify`: intended flows reachable, no netgen rule granting more than the flows.
- drift.py: `netgen drift`: live rules, routes and peerings against generated/.
- discover.py: `netgen discover`: inventory spec files from what exists.
"""
