"""netgen: compile declarative access specs into VPC peering, security-group rules and NetworkPolicies."""

__version__ = "0.1.0"
