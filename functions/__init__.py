"""One module per trigger family, each thin: parse the trigger, call a service, answer."""

from functions.health import bp as health

BLUEPRINTS = [health]
