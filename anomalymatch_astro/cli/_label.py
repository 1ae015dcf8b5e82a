"""``anomalymatch-astro label``: serve the labelling UI of a session workdir on 127.0.0.1."""

import sys

HELP = "serve the labelling UI for a session workdir on 127.0.0.1"


def add_arguments(parser):
    """Add the ``label`` arguments to an argparse parser."""
    from ..active_learning import MODES, STRATEGIES

    parser.add_argument(
        "--workdir", required=True, help="the session workdir (made by ActiveLearningSession(cutouts, workdir=...))"
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need --allow-remote)"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (the token is then the only protection)",
    )
    parser.add_argument(
        "--strategy",
        default="top",
        choices=[s for s in STRATEGIES if s != "similar"],
        help="candidate strategy (default top)",
    )
    parser.add_argument("--page-size", type=int, default=24, help="tiles per page (default 24)")
    parser.add_argument("--mode", default="fast", choices=MODES, help="training mode of Retrain (default fast)")
    parser.add_argument("--user", help="user name recorded with each label (default: login name)")


def run(args):
    """Open the session, start the server, print its URL and serve until Ctrl+C."""
    from ..active_learning import ActiveLearningSession
    from ..ui import LabelServer

    if not 0 <= args.port <= 65535:
        print(f"error: --port must be between 0 and 65535, got {args.port}", file=sys.stderr)
        return 2
    session = ActiveLearningSession.open(args.workdir, user=args.user)
    try:
        server = LabelServer(
            session,
            host=args.host,
            port=args.port,
            allow_remote=args.allow_remote,
            strategy=args.strategy,
            page_size=args.page_size,
            mode=args.mode,
        )
        print(f"labelling {len(session.cutouts)} objects in {session.workdir}", flush=True)
        print(f"open this URL in a browser (it holds the access token, keep it private):\n  {server.url}", flush=True)
        print("press Ctrl+C to stop; every label is already saved in labels.sqlite", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped", flush=True)
        finally:
            server.shutdown()
    finally:
        session.close()
    return 0
