"""``groundset review``: label candidates in the browser, on a page served from this machine."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import click

from groundset.core.cli.common import counted, db_option
from groundset.core.labels import ASPECTS, default_labeller
from groundset.core.store import DEFAULT_DB

__all__ = ["review_command"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command("review")
@click.argument("runs", nargs=-1)
@click.option("--aspect", type=click.Choice(ASPECTS), default="overall", show_default=True)
@click.option("--labeller", help="Who labels [default: your login name]")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to serve on; anything but loopback exposes the page to the network",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="0 picks a free port")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the queue's draws")
@click.option("--stratified", type=click.IntRange(0), default=30, show_default=True,
              help="Labels drawn stratified (by document and score range) before the queue"
              " turns to uncertain candidates")  # fmt: skip
@click.option("--open/--no-open", "open_browser", default=False, show_default=True,
              help="Open the page in the default browser")  # fmt: skip
@db_option
def review_command(
    runs: tuple[str, ...], aspect: str, labeller: str | None, host: str, port: int, seed: int,
    stratified: int, open_browser: bool, db: str | None,
) -> None:  # fmt: skip
    """Label the candidates of RUNS (default: the latest run) on a local web page: the document
    with the evidence each validator used, the answer, and every score against its threshold.
    Keys: g good, b bad, s skip, u undo, n note. The queue starts with a stratified random sample
    and then turns to where labels teach most; each label records its sampling weight, so
    `groundset calibrate` stays unbiased. Labels are saved as you go, also while a run writes
    the same store. Ctrl-C stops the page."""
    import uvicorn

    from groundset.core.review.app import review_app
    from groundset.core.review.session import ReviewSession

    path = Path(db or DEFAULT_DB)
    session = ReviewSession(
        path, list(runs), aspect, labeller or default_labeller(), seed, stratified
    )
    token = secrets.token_urlsafe(18)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        raise click.ClickException(f"--host {host} --port {port}: {error.strerror}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/?token={token}"
    hosts = list({host, *LOOPBACK[:2]}) if host in LOOPBACK else ["*"]
    app = review_app(session, token, hosts)
    pool = session.progress()
    click.echo(
        f"reviewing {', '.join(session.run_names)} ({pool['candidates']} candidates,"
        f" {pool['labelled']} labelled), aspect {aspect}, as {session.labeller}"
    )
    if host not in LOOPBACK:
        click.echo(f"warning: serving on {host}: anyone who can reach it and has the token can"
                   " label", err=True)  # fmt: skip
    click.echo(f"review page: {url}", nl=True)
    click.echo("keys: g good, b bad, s skip, u undo, n note; Ctrl-C stops")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    session.start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn hands Ctrl-C on after shutting down: the way to stop
        pass
    finally:
        session.stop()
        left = len(session.journal.pending)
        made = session.progress()["this_sitting"]
        click.echo(f"recorded {counted(made, 'label')} in {path}")
        if left:
            click.echo(f"{counted(left, 'label')} wait in {session.journal.path}: the next"
                       " `groundset review` on this store records them")  # fmt: skip
