"""QMTL Rebalancing."""
