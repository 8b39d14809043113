"""How the dashboard is served: the grid-size cap of a network-served dashboard, a fixed default
port a teacher can bookmark, the addresses students type, and the Solara settings the
dashboard needs (no badge, dead sessions culled in a minute, no cookie warning).

``abm serve`` (``abm/cli.py``) runs ``solara run abm.server`` in its own process; it passes the
settings here through environment variables (``serve_environment``), and the served page reads
them (``max_sites``). Without them (an older ``abm serve``) the host is read from the server's
own command line, so the cap applies whenever the dashboard listens beyond this machine.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from dataclasses import dataclass

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8765  # a fixed port a teacher can bookmark; the next free one if it is taken
MIN_SITES = 100 * 100  # a cap must let every scenario's grid open (a tab opens on one)
NETWORK_MAX_SITES = 250_000  # e.g. 500 x 500; a 1000 x 1000 tab takes ~1.7 GB and a minute
ENV_HOST = "ABM_SERVE_HOST"
ENV_MAX_SITES = "ABM_MAX_SITES"
CULL_TIMEOUT = "60s"  # a tab gone without closing (lid shut, Wi-Fi lost) is freed after this


def serve_environment(host: str, max_sites: int | None = None) -> dict[str, str]:
    """Environment variables for the server process: the host it listens on, and the largest
    grid (width x height) a tab may ask for (``None``: the default for that host; 0: no cap).
    Raises ``ValueError`` for a negative ``max_sites``, or one below ``MIN_SITES``."""
    env = {ENV_HOST: host}
    if max_sites is not None:
        if max_sites < 0 or 0 < max_sites < MIN_SITES:
            raise ValueError(f"--max-sites {max_sites}: expected 0 (no limit) or at least "
                             f"{MIN_SITES:,} sites (width x height; the scenarios' grid is "
                             "100 x 100)")
        env[ENV_MAX_SITES] = str(max_sites)
    return env


def _host_from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--host" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--host="):
            return arg.split("=", 1)[1]
    return None


def served_host() -> str:
    """The address this dashboard listens on (127.0.0.1 unless told otherwise)."""
    return os.environ.get(ENV_HOST) or _host_from_argv(sys.argv) or "127.0.0.1"


def max_sites() -> int | None:
    """The largest grid a tab may ask for, or None for no cap: ``ABM_MAX_SITES`` if set (0 = no
    cap), else ``NETWORK_MAX_SITES`` when served beyond 127.0.0.1, else no cap."""
    text = os.environ.get(ENV_MAX_SITES)
    if text:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0 or 0 < value < MIN_SITES:
            raise ValueError(f"{ENV_MAX_SITES}={text!r}: expected 0 (no limit) or a whole "
                             f"number of sites of at least {MIN_SITES:,}")
        return value if value > 0 else None
    return None if served_host() in LOOPBACK_HOSTS else NETWORK_MAX_SITES


def check_environment() -> None:
    """Raise ``ValueError`` naming ``ABM_MAX_SITES`` if it is set to a cap no scenario fits."""
    if os.environ.get(ENV_MAX_SITES):
        max_sites()


def check_grid(width: int, height: int, limit: int | None = None) -> None:
    """Raise ``ValueError`` if a width x height grid is larger than this server allows."""
    limit = max_sites() if limit is None else limit
    if limit is not None and width * height > limit:
        raise ValueError(
            f"width x height = {width} x {height} = {width * height:,} sites is more than this "
            f"server allows ({limit:,} sites, e.g. {int(limit ** 0.5)} x {int(limit ** 0.5)}); "
            "ask for a smaller grid, or run `abm serve` on your own machine"
        )


def check_host(host: str) -> None:
    """Raise ``ValueError`` unless ``host`` is an address this machine can listen on (an empty
    host would mean every interface, which must be asked for as 0.0.0.0)."""
    hint = "use 127.0.0.1 (this machine only) or 0.0.0.0 (a classroom network)"
    if not host.strip():
        raise ValueError(f"--host {host!r}: empty; {hint}")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or err
        raise ValueError(f"--host {host!r}: not an address or name this machine can resolve "
                         f"({reason}); {hint}") from None
    reason = "no address"
    for family, _, _, _, address in infos:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((address[0], 0))
                return
            except OSError as err:
                reason = err.strerror or err
    raise ValueError(f"--host {host!r}: not an address of this machine ({reason}); {hint}")


def pick_port(host: str, preferred: int = DEFAULT_PORT, tries: int = 20) -> int:
    """``preferred`` if it is free on ``host``, else the next free one after it (up to
    ``tries``), else any free port. 0 means any free port."""
    candidates = [preferred + i for i in range(tries)] if preferred else []
    for port in [*candidates, 0]:
        if port > 65535:
            continue
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            if os.name == "posix":
                # as the server binds (uvicorn): a port whose last connections are still in
                # TIME_WAIT (a server stopped a moment ago) is free; one listened on is not
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError(f"no free port on {host}")


def network_addresses() -> list[str]:
    """This machine's IPv4 addresses other than loopback (what students type; a host name
    such as "vm" may not resolve on their devices)."""
    found: list[str] = []
    try:  # the address of the interface with the default route (no packet is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            found.append(s.getsockname()[0])
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(info[4][0])
    except OSError:
        pass
    return [a for a in dict.fromkeys(found) if not a.startswith("127.")]


def urls(host: str, port: int) -> list[str]:
    """The URLs to print: this machine, and each network address when served beyond it."""
    if host in LOOPBACK_HOSTS:
        return [f"http://{host}:{port}"]
    if host in ("0.0.0.0", "::"):
        return [f"http://{a}:{port}" for a in network_addresses()] + [f"http://127.0.0.1:{port}"]
    return [f"http://{host}:{port}"]


@dataclass(frozen=True)
class ServeSettings:
    """What ``abm serve`` needs to start the server: the port, the environment for the server
    process, and the lines to print (the URLs students type, a warning when open)."""

    host: str
    port: int
    env: dict[str, str]
    lines: list[str]
    warning: str | None


def serve_settings(host: str = "127.0.0.1", port: int | None = None,
                   max_sites: int | None = None) -> ServeSettings:
    """Settings for ``abm serve``: ``port`` None means the fixed ``DEFAULT_PORT`` (or the next
    free one), 0 any free port; ``max_sites`` None means the default for the host (no cap on
    127.0.0.1, ``NETWORK_MAX_SITES`` beyond it), 0 no cap. Raises ``ValueError`` naming a bad
    option."""
    if port is not None and not 0 <= port <= 65535:
        raise ValueError(f"--port {port}: expected 0 (any free port) or 1-65535")
    check_host(host)
    chosen = pick_port(host, DEFAULT_PORT if port is None else port, 20 if port is None else 1)
    if port not in (None, 0) and chosen != port:
        raise ValueError(f"--port {port}: already in use; leave --port out to take the next "
                         "free one")
    env = serve_environment(host, max_sites)
    if max_sites is None:
        check_environment()  # a cap set in the shell: checked now, not on every page load
    links = urls(host, chosen)
    lines = [f"abm dashboard: {links[0]}  (Ctrl-C to stop)"]
    lines += [f"               {link}" for link in links[1:]]
    warning = None
    if host not in LOOPBACK_HOSTS:
        limit = max_sites if max_sites is not None else NETWORK_MAX_SITES
        cap = f"grids up to {limit:,} sites" if limit else "any grid size"
        warning = (f"warning: --host {host} lets anyone on this network open the dashboard and "
                   f"run models on this machine ({cap}); use it only on a network you trust "
                   "(a classroom), and the default 127.0.0.1 otherwise.")
    return ServeSettings(host, chosen, env, lines, warning)


def configure_solara() -> None:
    """Settings of the Solara server process (called when ``abm.server`` is imported):

    - no "This website runs on Solara" badge (it covered the charts);
    - a tab gone without closing is culled after ``CULL_TIMEOUT`` (Solara keeps it 24 h by
      default, playing; ``SOLARA_KERNEL_CULL_TIMEOUT`` still overrides);
    - a page whose session is gone (the server was restarted, or the tab was culled while a
      laptop slept) reloads itself once the server answers, from its address bar, which
      follows the page (``abm.dashboard.app.AddressBar``): the same lesson, seed and text size,
      from day 0. Solara's "Please refresh the page" dialog came up under its own "Server
      disconnected" overlay, so its button could not be clicked
      (``SOLARA_THEME_FORCE_REFRESH`` still overrides);
    - no 13-line warning about cookies over plain http on the first page load;
    - no ``/resourcez``: it shows the server's statistics (threads, kernels, websockets, memory)
      as JSON to anyone who can reach the page, which a dashboard served to a classroom network
      should not.
    """
    import solara.server.settings as settings

    settings.theme.show_banner = False
    if "SOLARA_KERNEL_CULL_TIMEOUT" not in os.environ:
        settings.kernel.cull_timeout = CULL_TIMEOUT
    if "SOLARA_THEME_FORCE_REFRESH" not in os.environ:
        settings.theme.force_refresh = True
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https")
    _drop_route("/resourcez")


def _drop_route(path: str) -> None:
    """Remove a route of the running Solara server (only in the server process: where
    ``solara.server.starlette`` was imported by ``solara run``)."""
    server_app = sys.modules.get("solara.server.starlette")
    if server_app is None:
        return
    routes = server_app.app.router.routes
    routes[:] = [route for route in routes if getattr(route, "path", None) != path]
