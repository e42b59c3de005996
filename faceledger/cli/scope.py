"""The scope options shared by `crawl` and `watch run`: one spelling, one conversion."""

from __future__ import annotations

from typing import Annotated

import typer

from faceledger.crawl.settings import ScopeOptions

SeedsArgument = Annotated[list[str], typer.Argument(help="Seed URLs the crawl starts from.")]
AllowDomainOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-domain", help="Domain the crawl may visit (repeat; default: the seeds' hosts)."
    ),
]
PathPrefixOption = Annotated[
    list[str] | None,
    typer.Option("--path-prefix", help="Only pages whose path starts with this (repeat)."),
]
MaxDepthOption = Annotated[
    int, typer.Option("--max-depth", min=0, help="Links followed from a seed.")
]
MaxPagesOption = Annotated[int, typer.Option("--max-pages", min=1, help="Pages fetched at most.")]
MaxMegabytesOption = Annotated[
    int, typer.Option("--max-mb", min=1, help="Megabytes downloaded at most.")
]
MaxPerShapeOption = Annotated[
    int,
    typer.Option(
        "--max-per-shape",
        min=1,
        help="Pages per URL shape (digits masked), the cap that stops calendar-like traps.",
    ),
]
AllowAddressOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-address",
        help="Private address or CIDR range this crawl may reach (repeat; admin only).",
    ),
]


def scope_options(
    seeds: list[str],
    allow_domain: list[str] | None,
    path_prefix: list[str] | None,
    max_depth: int,
    max_pages: int,
    max_mb: int,
    allow_address: list[str] | None,
    max_per_shape: int = 50,
) -> ScopeOptions:
    """The declared scope from the command's options (not yet validated: see `.scope()`)."""
    return ScopeOptions(
        seeds=tuple(seeds),
        allow_domains=tuple(allow_domain or ()),
        path_prefixes=tuple(path_prefix or ()),
        max_depth=max_depth,
        max_pages=max_pages,
        max_bytes=max_mb * 1024 * 1024,
        max_per_shape=max_per_shape,
        allow_addresses=tuple(allow_address or ()),
    )
