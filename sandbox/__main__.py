"""Command line: ``python -m sandbox serve …`` and ``python -m sandbox dump …``.

``serve`` prints ``KEY=value`` lines (paste them as environment variables, or
``eval "$(…)"``-style source them) and serves until Ctrl-C or SIGTERM. The app calls
``main(argv)`` for ``seatwarden sandbox serve``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime

from .clock import Clock
from .generator import DEFAULT_PRODUCTS, generate_org
from .orgfile import OrgFileError, dump_org
from .runtime import Sandbox, SandboxConfig
from .timeutil import parse_iso


def _instant(text: str) -> datetime:
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 instant: {text}") from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Stand-ins for the Atlassian Admin API, Entra ID and Microsoft Graph.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def org_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--users", type=int, default=200, help="people to generate")
        command.add_argument("--seed", type=int, default=7, help="same seed, same org")
        command.add_argument(
            "--products",
            nargs="+",
            default=list(DEFAULT_PRODUCTS),
            metavar="KEY",
            help="product keys (default: %(default)s)",
        )
        command.add_argument(
            "--start", type=_instant, default=None, help="clock start, ISO 8601 (default: now)"
        )
        command.add_argument(
            "--synced-access-groups",
            action="store_true",
            help="make {product}-users synced from Entra as well",
        )

    serve = commands.add_parser("serve", help="run both servers until interrupted")
    org_options(serve)
    serve.add_argument(
        "--org", default=None, metavar="FILE", help="load this org JSON instead of generating one"
    )
    serve.add_argument("--latency-ms", type=int, default=0, help="added to every request")
    serve.add_argument("--rate-scale", type=float, default=1.0, help="multiplies every default rate limit")
    serve.add_argument(
        "--no-activity-in-search", action="store_true", help="users search leaves out lastActiveTimestamp"
    )
    serve.add_argument(
        "--frozen-clock", action="store_true", help="the clock moves only on POST /_sandbox/advance"
    )
    serve.add_argument("--port-atlassian", type=int, default=0)
    serve.add_argument("--port-microsoft", type=int, default=0)
    serve.add_argument("--fault-timeout-s", type=float, default=30.0)
    serve.add_argument(
        "--deliver-notifications",
        action="store_true",
        help="POST Graph change notifications to subscriptions on Entra changes",
    )
    serve.add_argument(
        "--validate-notification-urls",
        action="store_true",
        help="run the validation handshake when a subscription is created",
    )
    serve.add_argument("--verbose", action="store_true", help="log every request")

    dump = commands.add_parser("dump", help="print a generated org as org-file JSON")
    org_options(dump)
    return parser


def _serve(args: argparse.Namespace) -> int:
    config = SandboxConfig(
        users=args.users,
        seed=args.seed,
        org_file=args.org,
        latency_ms=args.latency_ms,
        rate_scale=args.rate_scale,
        activity_in_search=not args.no_activity_in_search,
        products=tuple(args.products),
        start=args.start,
        frozen_clock=args.frozen_clock,
        fault_timeout_s=args.fault_timeout_s,
        port_atlassian=args.port_atlassian,
        port_microsoft=args.port_microsoft,
        synced_access_groups=args.synced_access_groups,
        validate_notification_urls=args.validate_notification_urls,
        deliver_notifications=args.deliver_notifications,
        verbose=args.verbose,
    )
    try:
        sandbox = Sandbox.start(config)
    except (OrgFileError, OSError, ValueError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with sandbox:
        for key, value in sandbox.env().items():
            print(f"{key}={value}")
        sys.stdout.flush()
        print(f"sandbox: {len(sandbox.org.users)} users; Ctrl-C to stop", file=sys.stderr)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


def _dump(args: argparse.Namespace) -> int:
    org = generate_org(
        users=args.users,
        seed=args.seed,
        clock=Clock(args.start),
        products=tuple(args.products),
        synced_access_groups=args.synced_access_groups,
    )
    json.dump(dump_org(org), sys.stdout, indent=2)
    print()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.users < 1:
        print("sandbox: --users must be at least 1", file=sys.stderr)
        return 2
    return _serve(args) if args.command == "serve" else _dump(args)


if __name__ == "__main__":
    sys.exit(main())
