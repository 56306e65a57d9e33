"""Test doubles that stand in for programs these machines do not have (a Docker engine)."""
