"""The README's benchmark table is the one bench/results.json makes, and it says what was missed."""

from __future__ import annotations

import copy
import json
from typing import Any

from bench.table import README, RESULTS, table, with_table


def results() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(RESULTS.read_text(encoding="utf-8"))
    return loaded


def test_the_readme_shows_the_recorded_figures() -> None:
    readme = README.read_text(encoding="utf-8")
    assert with_table(readme, results()) == readme, "run `python -m bench.table --write`"


def test_a_missed_target_and_an_unfinished_run_are_said_so() -> None:
    missed = copy.deepcopy(results())
    million = missed["plan"]["1000000"]
    million["plan_seconds"] = million["target_plan_seconds"] + 1
    modes = missed["nights"]["modes"]
    modes["lookups"]["nights"] = modes["lookups"]["nights"][:2]
    lines = table(missed).splitlines()

    wall_row = "| Planning 1,000,000 people, 3 products: wall time"
    (wall,) = [line for line in lines if line.startswith(wall_row)]
    assert "| **no** |" in wall
    (calls,) = [line for line in lines if line.startswith("| Nights, activity by lookups (")]
    assert "2 of 31 nights, run unfinished" in calls


def test_the_time_row_says_how_much_cpu_the_hypervisor_took_where_it_was_recorded() -> None:
    stolen = copy.deepcopy(results())
    nights = stolen["nights"]["modes"]["activity_in_read"]["nights"]
    for night in nights:
        night.pop("steal_percent", None)
    time_row = "| Nights, activity in the users read: wall"
    (before,) = [line for line in table(stolen).splitlines() if line.startswith(time_row)]
    assert "steal" not in before
    nights[0]["steal_percent"], nights[-1]["steal_percent"] = 40.5, 3.0
    (after,) = [line for line in table(stolen).splitlines() if line.startswith(time_row)]
    assert "CPU steal 3-40.5%" in after
