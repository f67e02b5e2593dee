"""``bpcore serve`` and ``bpcore upload``: their options come from :class:`~bpcore.serving.config.ServeConfig`."""

from __future__ import annotations

import argparse
from typing import Any

import attrs

from bpcore.serving.config import ServeConfig

#: ServeConfig fields given as repeated options (``--model A --model B``), by their option name.
REPEATED = {"models": "--model", "api_keys": "--api-key"}


def add_commands(commands: Any) -> None:
    """Add ``serve`` and ``upload`` to the ``bpcore`` command's sub-parsers."""
    serve = commands.add_parser("serve", help="serve the tasks over HTTP (needs bpcore[serve])")
    for field in attrs.fields(ServeConfig):
        _add_option(serve, field)
    serve.set_defaults(handler=_serve)

    upload = commands.add_parser("upload", help="send a saved model folder to a bpcore server")
    upload.add_argument("path", help="the folder bpcore.save wrote")
    upload.add_argument("--name", required=True, help="the name the server serves it under")
    upload.add_argument("--url", help="the server (default $BPCORE_URL or http://127.0.0.1:8000)")
    upload.add_argument("--api-key", help="the server's key (default $BPCORE_API_KEY)")
    upload.add_argument("--overwrite", action="store_true", help="replace a model of that name")
    upload.set_defaults(handler=_upload)


def _add_option(parser: argparse.ArgumentParser, field: attrs.Attribute[Any]) -> None:
    help_text = field.metadata.get("help")
    if field.name in REPEATED:
        parser.add_argument(
            REPEATED[field.name], dest=field.name, action="append", default=[], help=help_text
        )
    elif field.type in (bool, "bool"):
        parser.add_argument(f"--{field.name.replace('_', '-')}", action="store_true", help=help_text)
    else:
        kind = {"int": int, "float": float}.get(str(field.type), str)
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            type=kind,
            default=field.default,
            choices=field.metadata.get("choices"),
            help=f"{help_text} (default {field.default})",
        )


def _serve(args: argparse.Namespace) -> int:
    from bpcore.serving import serve

    options = {field.name: getattr(args, field.name) for field in attrs.fields(ServeConfig)}
    serve(**options)
    return 0


def _upload(args: argparse.Namespace) -> int:
    from bpcore.remote import server_url, upload_folder

    name = upload_folder(args.path, args.name, url=args.url, api_key=args.api_key, overwrite=args.overwrite)
    print(f"uploaded {args.path} as {name!r} to {server_url(args.url)}")
    return 0
