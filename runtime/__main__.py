"""``python -m runtime serve --port N``: the Lambda handler behind a local HTTP server."""
from __future__ import annotations

import argparse
import sys

from runtime import logs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the handler as a local HTTP server (SIGTERM/SIGINT: final sync)")
    serve.add_argument("--port", type=int, default=9000, help="port to listen on (0: any free port; default 9000)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    args = parser.parse_args(argv)
    logs.configure()
    from runtime.serve import serve as run  # imported late: argparse errors stay fast

    return run(host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
