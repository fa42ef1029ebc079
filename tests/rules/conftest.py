"""Hypothesis profiles for the rules' property tests.

`rules` (the default) keeps each property to a second or two; `soak` runs many more
examples for a long unattended run: `HYPOTHESIS_PROFILE=soak pytest tests/rules`.
The property tests apply the chosen profile themselves (`PROPERTY_SETTINGS`), so loading
this file changes nothing for other tests in the session.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("rules", max_examples=100, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("soak", max_examples=20_000, deadline=None, suppress_health_check=_QUIET)

#: The profile the property tests run under.
PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE", "rules")
PROPERTY_SETTINGS = settings.get_profile(PROFILE_NAME)
