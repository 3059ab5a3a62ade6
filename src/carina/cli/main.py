"""The ``carina`` command (contract in DESIGN.md §1).

Each sub-command lives in its own module under ``carina.cli``; this module only parses the
command line, sets Django up and dispatches.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carina", description="Carina PACS: archive, DICOM node and web server."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("serve", help="migrate, then run every part of Carina in the foreground")
    sub.add_parser("web", help="run the web server (HTTP) in the foreground")
    sub.add_parser("dicom", help="run the DICOM listener (C-ECHO, C-STORE) in the foreground")
    sub.add_parser("migrate", help="create or update the database tables")
    p = sub.add_parser("worker", help="run the background worker (transfers, forwarding)")
    p.add_argument("--concurrency", type=int, default=4, help="threads (default: 4)")
    sub.add_parser("beat", help="run the scheduler of periodic background work")

    p = sub.add_parser("createadmin", help="create or update an administrator (idempotent)")
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--hospital", metavar="SLUG", help="hospital administrator of this hospital")
    p.add_argument("--role", help="role in --hospital (default: hospital_admin)")

    hospitals = sub.add_parser("hospitals", help="manage hospitals").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = hospitals.add_parser("add", help="add a hospital or update it (idempotent)")
    p.add_argument("slug")
    p.add_argument("--name", required=True)
    p.add_argument(
        "--ae",
        action="append",
        default=[],
        metavar="AE_TITLE",
        help="an AE title the hospital answers to (repeat for several)",
    )
    hospitals.add_parser("list", help="list hospitals and their AE titles")

    nodes = sub.add_parser("nodes", help="manage the known remote DICOM nodes").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    p = nodes.add_parser("add", help="add a remote DICOM node or update it (idempotent)")
    p.add_argument("name")
    p.add_argument("--hospital", default="default", metavar="SLUG")
    # --ae, --host and --port are required for a DICOM node (a DICOMweb node has --url).
    p.add_argument("--ae", default="", metavar="AE_TITLE", help="the node's AE title")
    p.add_argument("--host", default="", help="host name or IP address it listens on")
    p.add_argument("--port", default=0, type=int)
    p.add_argument("--description")
    flag = argparse.BooleanOptionalAction
    state = p.add_mutually_exclusive_group()
    state.add_argument("--enable", dest="enabled", action="store_const", const=True)
    state.add_argument(
        "--disable", dest="enabled", action="store_const", const=False, help="reject its calls"
    )
    for service in ("echo", "store", "query", "retrieve"):
        p.add_argument(f"--{service}", dest=f"may_{service}", action=flag)
    p.add_argument("--move-destination", dest="is_move_destination", action=flag)
    # Send destinations (docs/routing.md).
    p.add_argument("--kind", choices=["dimse", "dicomweb"], help="how to reach it (default dimse)")
    p.add_argument("--tls", dest="use_tls", action=flag, help="connect over TLS")
    p.add_argument("--preferred-syntax", dest="preferred_transfer_syntax", metavar="UID")
    p.add_argument("--max-associations", dest="max_associations", type=int, metavar="N")
    p.add_argument("--url", dest="dicomweb_url", help="DICOMweb root URL (--kind dicomweb)")
    p.add_argument("--token", dest="dicomweb_token", help="DICOMweb bearer token")
    p = nodes.add_parser("list", help="list remote DICOM nodes")
    p.add_argument("--hospital", metavar="SLUG")

    p = sub.add_parser("send", help="send a study, series or instances to DICOM nodes")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--study", metavar="UID", help="StudyInstanceUID")
    what.add_argument("--series", metavar="UID", help="SeriesInstanceUID")
    what.add_argument("--instance", metavar="UID", action="append", help="SOPInstanceUID (repeat)")
    p.add_argument("--to", required=True, action="append", metavar="NODE_NAME", help="repeat")
    p.add_argument("--hospital", default="default", metavar="SLUG")
    p.add_argument("--queue", action="store_true", help="only queue it for the worker")

    p = sub.add_parser("import", help="import DICOM files, folders (recursively) and ZIP archives")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--hospital", default="default", metavar="SLUG")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carina.config.settings")
    import django

    django.setup()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from carina.cli.serve import serve

        return serve()
    if args.command == "web":
        from carina.cli.serve import run_web

        return run_web()
    _setup_django()
    if args.command == "migrate":
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=1)
        from carina.archive.planner import refresh_planner_statistics

        refresh_planner_statistics()
        return 0
    if args.command == "createadmin":
        from carina.cli.setup import createadmin

        return createadmin(args.username, args.password, args.hospital, args.role)
    if args.command == "hospitals":
        from carina.cli.setup import hospitals_add, hospitals_list

        if args.action == "add":
            return hospitals_add(args.slug, args.name, args.ae)
        return hospitals_list()
    if args.command == "dicom":
        from carina.cli.dicom import run_dicom

        return run_dicom()
    if args.command == "nodes":
        from carina.cli.nodes import node_options, nodes_add, nodes_list

        if args.action == "add":
            return nodes_add(
                args.name, args.hospital, args.ae, args.host, args.port, node_options(args)
            )
        return nodes_list(args.hospital)
    if args.command == "worker":
        from carina.cli.worker import run_worker

        return run_worker(args.concurrency)
    if args.command == "beat":
        from carina.cli.worker import run_beat

        return run_beat()
    if args.command == "send":
        from carina.cli.send import run_send

        return run_send(
            study=args.study,
            series=args.series,
            instances=args.instance,
            to=args.to,
            slug=args.hospital,
            queue_only=args.queue,
        )
    if args.command == "import":
        from carina.cli.importer import run_import

        return run_import(args.paths, args.hospital, progress=not args.quiet)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
