"""The Azure Functions entry point: registers the blueprints in functions/, nothing else.

The host imports this module to index the functions before any app setting may be present,
so no module imported here reads a setting, opens a connection or touches the network at
import time. Settings are read when a function runs (shared/settings.py).
"""

import azure.functions as func

from functions import BLUEPRINTS

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
