"""The `world` of the function tests: a small sandbox org, Azurite, the functions' own code."""

from tests.functions.conftest import world  # noqa: F401 - the fixture, shared
