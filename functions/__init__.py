"""One module per trigger family, each thin: parse the trigger, call a service, answer."""

from functions.admin import bp as admin
from functions.health import bp as health
from functions.poison import bp as poison
from functions.reconcile import bp as reconcile
from functions.selfservice import bp as selfservice
from functions.timers import bp as timers
from functions.warnings import bp as warnings
from functions.webhooks import bp as webhooks

BLUEPRINTS = [health, reconcile, webhooks, timers, admin, selfservice, warnings, poison]
