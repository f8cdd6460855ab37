"""The dashboard's layout and callbacks (Dash): formats what backstop.dashboard.data reads; never sends a transaction.

`create_app(system, ...)` builds the app; `serve(app, host, port)` runs it in the foreground (`make dashboard`),
`BackgroundServer(app)` in a thread on a free port (the browser test). JavaScript and CSS come from the installed
dash package (`serve_locally=True`): the page works offline.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, dcc, html, no_update
from flask import abort, send_from_directory
from werkzeug.serving import make_server

from backstop.client.deploy import System
from backstop.dashboard import data

REFRESH_MS = 2000  # how often the page asks for a new block
EVENTS_SHOWN = 50


# ---------------------------------------------------------------- formatting


def fmt_units(amount: int, decimals: int) -> str:
    """Quote units as an exact decimal with every digit, e.g. 70000123456 (6 dec) -> '70,000.123456'."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(int(amount)), 10 ** decimals)
    return f"{sign}{whole:,}" + (f".{frac:0{decimals}d}" if decimals else "")


def fmt_ratio(value: Decimal | None, places: int = 4) -> str:
    return "—" if value is None else f"{value:.{places}f}"


def fmt_pct(value: float | Decimal | None) -> str:
    return "—" if value is None else f"{float(value) * 100:,.2f}%"


def fmt_time(timestamp: int) -> str:
    return datetime.fromtimestamp(int(timestamp), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_duration(seconds: int) -> str:
    sign, seconds = ("-" if seconds < 0 else ""), abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes)
    return sign + (" ".join(parts) if parts else f"{secs} s")


def short(address: str | None) -> str:
    return "—" if not address else f"{address[:6]}…{address[-4:]}"


# ---------------------------------------------------------------- layout pieces


def card(title: str, value_id: str, note_id: str | None = None) -> html.Div:
    """A figure with its title and a note saying what it is made of."""
    children = [html.Div(title, className="card-title"), html.Div("…", id=value_id, className="card-value")]
    if note_id:
        children.append(html.Div("", id=note_id, className="card-note"))
    return html.Div(children, className="card")


def table(header: list[str], rows: list[list], table_id: str, empty: str) -> html.Table | html.Div:
    if not rows:
        return html.Div(empty, id=table_id, className="empty")
    return html.Table([html.Thead(html.Tr([html.Th(h) for h in header])),
                       html.Tbody([html.Tr([html.Td(c) for c in row]) for row in rows])], id=table_id)


def history_figure(snapshot: data.SegmentSnapshot, field: str, title: str, unit: str) -> go.Figure:
    d = snapshot.decimals
    xs = [datetime.fromtimestamp(p.timestamp, tz=timezone.utc) for p in snapshot.history]
    ys = [float(Decimal(getattr(p, field)) / Decimal(10 ** d)) for p in snapshot.history]
    figure = go.Figure(go.Scatter(x=xs, y=ys, mode="lines+markers", line_shape="hv",
                                  customdata=[p.block for p in snapshot.history],
                                  hovertemplate="block %{customdata}<br>%{y:,.6f} " + unit + "<extra></extra>"))
    figure.update_layout(title=title, margin=dict(l=50, r=20, t=40, b=40), height=300, yaxis_title=unit,
                         template="plotly_white")
    return figure


def layout(labels: list[str], default: str, source: str, plots: list[str], refresh_ms: int) -> html.Div:
    return html.Div([
        html.H1("Backstop: insurance pools and segment risk"),
        html.Div([html.Span(f"chain {source}"), html.Span(" · head block "), html.Span("…", id="head-block"),
                  html.Span(" · "), html.Span("…", id="head-time")], className="subtitle"),
        html.Div([
            html.Label(["Segment", dcc.Dropdown(id="segment", options=[{"label": x, "value": x} for x in labels],
                                                value=default, clearable=False, searchable=False)],
                       className="control"),
            html.Label(["LP address", dcc.Input(id="lp-address", type="text", debounce=True,
                                                placeholder="0x… (Enter to look up)", className="address")],
                       className="control"),
        ], className="controls"),
        html.Div("", id="lp-error", className="error"),
        html.Div("", id="read-error", className="error"),
        html.H2(["Segment pool ", html.Span("", id="pool-label"), " ", html.Span("", id="pool-address",
                                                                                className="mono")]),
        html.Div([
            card("NAV (managed assets)", "nav", "nav-note"),
            card("Assets per share", "aps", "aps-note"),
            card("Trailing APY", "apy", "apy-note"),
            card("Pending redemptions", "pending-redemption", "pending-note"),
            card("Coverage vs target", "coverage", "coverage-note"),
            card("Stressed 99.9% loss", "stressed-loss", "stressed-note"),
            card("Backstop draw headroom", "headroom", "headroom-note"),
            card("Distance to ADL", "adl-distance", "adl-note"),
            card("Paid by the pools", "paid-by-pools", "paid-note"),
            card("Left unpaid / taken by ADL", "socialized", "socialized-note"),
        ], className="cards"),
        html.Div([dcc.Graph(id="nav-graph", config={"displaylogo": False}),
                  dcc.Graph(id="aps-graph", config={"displaylogo": False})], className="graphs"),
        html.H2("Your position"),
        html.Div(id="lp-panel", children=html.Div("Enter an LP address above.", className="empty")),
        html.H2("Redemption queue"),
        html.Div(id="redemptions"),
        html.H2("Accounts nearest liquidation (equity / MM)"),
        html.Div(id="nearest"),
        html.H2("Loss waterfall"),
        html.Div(id="events"),
        html.H2("Simulator plots"),
        html.Div([html.Figure([html.Img(src=f"/reports/{name}", className="plot"), html.Figcaption(name)])
                  for name in plots] or
                 [html.Div("No plots in reports/ yet: `make stress` and `make size` write them.", className="empty")],
                 id="plots"),
        # max_intervals=0: the tick waits for the first refresh, which re-arms it for one more tick (see refresh)
        dcc.Interval(id="tick", interval=refresh_ms, max_intervals=0),
        dcc.Store(id="head-seen"),
    ], className="page")


# ---------------------------------------------------------------- rendering


def render(snapshot: data.SegmentSnapshot, names: dict[str, str]) -> dict:
    """Every output of the page for one snapshot, by component id."""
    d, s, h, c = snapshot.decimals, snapshot, snapshot.headroom, snapshot.coverage

    def name(address: str | None) -> str:
        return names.get(address, short(address)) if address else "—"

    pool = s.pool
    out = {
        "head-block": f"{s.head.number:,}",
        "head-time": fmt_time(s.head.timestamp),
        "pool-label": s.label,
        "pool-address": pool.address,
        "nav": fmt_units(pool.managed_assets, d),
        # totalAssets (what the shares are worth) and the income still vesting, apart: their sum is the NAV
        "nav-note": ["totalAssets ", html.Span(fmt_units(pool.total_assets, d), id="total-assets"),
                     " + vesting ", html.Span(fmt_units(pool.unvested_income, d), id="unvested")],
        "aps": fmt_units(pool.assets_per_share, d),
        "aps-note": f"per share; supply {fmt_units(pool.total_supply, pool.share_decimals)}",
        "apy": fmt_pct(s.apy.value) if s.apy.value is not None else f"{fmt_pct(s.apy.period_return)} (not annualized)",
        "apy-note": f"over {fmt_duration(s.apy.window)}" + ("" if s.apy.value is not None else
                                                             " of history (< 1 day)"),
        "pending-redemption": fmt_units(s.pending_assets, d),
        "pending-note": f"{len([r for r in s.redemptions if r.state != 'expired'])} request(s), "
                        f"{fmt_units(s.pending_shares, pool.share_decimals)} shares",
        "coverage": fmt_pct(c.ratio) if c.sized else "not sized — run make size",
        "coverage-note": (f"NAV / target {fmt_units(c.target, d)}" if c.sized else
                          f"on-chain target_size {fmt_units(c.onchain_target, d)}"),
        "stressed-loss": fmt_units(c.stressed_loss, d) if c.sized else "not sized — run make size",
        "stressed-note": (f"reach / stressed loss {fmt_ratio(c.reach_ratio, 2)}×" if c.sized else
                          "ES 99.9% of a year's losses (make size)"),
        "headroom": fmt_units(h.backstop_capacity, d),
        "headroom-note": f"window drawn {fmt_units(h.window_drawn, d)} of cap {fmt_units(h.window_cap, d)}; "
                         f"all segments {fmt_units(h.global_drawn, d)} of {fmt_units(h.global_cap, d)}",
        "adl-distance": fmt_units(h.adl_distance, d),
        "adl-note": f"cover reach {fmt_units(h.cover_reach, d)} − open deficits {fmt_units(h.uncovered, d)}",
        "paid-by-pools": fmt_units(s.losses.paid_by_pool + s.losses.paid_by_backstop, d),
        "paid-note": f"of {fmt_units(s.losses.requested, d)} requested: pool {fmt_units(s.losses.paid_by_pool, d)}, "
                     f"backstop {fmt_units(s.losses.paid_by_backstop, d)}",
        "socialized": f"{fmt_units(s.losses.unpaid, d)} / {fmt_units(s.losses.socialized, d)}",
        "socialized-note": f"unpaid after pool and backstop / socialized in {s.losses.deleveraged} ADL event(s)",
        "nav-graph": history_figure(s, "nav", "NAV over time", "USDC"),
        "aps-graph": history_figure(s, "assets_per_share", "Assets per share over time", "USDC per share"),
    }
    out["redemptions"] = table(
        ["owner", "shares", "assets now", "unlocks", "window closes", "state", "redeemable now"],
        [[html.Span(name(r.owner), title=r.owner), fmt_units(r.shares, pool.share_decimals), fmt_units(r.assets, d),
          fmt_time(r.unlock_at), fmt_time(r.expires_at), r.state, fmt_units(r.redeemable, pool.share_decimals)]
         for r in s.redemptions], "redemption-table", "No redeem request pending.")
    out["nearest"] = table(
        ["account", "equity / MM", "equity", "MM", "IM", "collateral", "notional"],
        [[html.Span(name(r.owner), title=r.owner, className="account"), fmt_ratio(data.health_ratio(r)),
          fmt_units(r.equity, d), fmt_units(r.mm, d), fmt_units(r.im, d), fmt_units(r.collateral, d),
          fmt_units(r.notional, d)] for r in s.nearest],
        "nearest-table", "No account of this segment holds a position.")
    out["events"] = table(
        ["block", "time", "contract", "event", "account", "details"],
        [[f"{e.block:,}", fmt_time(e.timestamp), e.contract, e.kind, html.Span(name(e.account), title=e.account or ""),
          _details(e, d, name)] for e in s.events[:EVENTS_SHOWN]],
        "events-table", "No cover, draw, liquidation or ADL in this segment yet.")
    out["lp-panel"] = lp_panel(s, d) if pool.lp else html.Div("Enter an LP address above.", className="empty")
    return out


AMOUNT_FIELDS = {"requested", "paid_by_pool", "paid_by_backstop", "unpaid", "paid", "deficit", "penalty",
                 "keeper_fee", "socialized_loss"}
WAD_FIELDS = {"size", "price", "mark", "discount"}


def _details(event: data.WaterfallEvent, decimals: int, name: Callable[[str], str]) -> str:
    """An event's other fields: amounts in quote units, prices and sizes as decimals, addresses by name."""
    parts = []
    for key, value in event.fields.items():
        if key in ("owner", "recipient", "segment"):
            continue
        if key in AMOUNT_FIELDS and isinstance(value, int):
            parts.append(f"{key} {fmt_units(value, decimals)}")
        elif key in WAD_FIELDS and isinstance(value, int):
            parts.append(f"{key} {Decimal(value) / Decimal(10 ** 18):.6g}")
        elif isinstance(value, str) and value.startswith("0x") and len(value) == 42:
            parts.append(f"{key} {name(value)}")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


LP_ROWS = {"lp-owner": "LP", "lp-shares": "pool shares", "lp-assets": "pool shares are worth",
           "lp-state": "redeem request", "lp-requested": "requested shares", "lp-unlock": "unlocks",
           "lp-expires": "window closes", "lp-redeemable": "redeemable now", "lp-backstop-shares": "backstop shares",
           "lp-backstop-assets": "backstop shares are worth", "lp-backstop-state": "backstop redeem request"}


def lp_panel(s: data.SegmentSnapshot, d: int) -> html.Table:
    """One LP's position in this segment's pool and in the shared backstop, by LP_ROWS id."""
    pool, request = s.pool, s.pool.request
    values = {"lp-owner": pool.lp, "lp-shares": fmt_units(pool.lp_shares, pool.share_decimals),
              "lp-assets": fmt_units(pool.lp_assets, d), "lp-state": request.state if request else "none"}
    if request is not None and request.state != "none":
        wait = f" (in {fmt_duration(request.unlock_at - s.head.timestamp)})" if request.state == "cooling" else ""
        values |= {"lp-requested": fmt_units(request.shares, pool.share_decimals),
                   "lp-unlock": fmt_time(request.unlock_at) + wait, "lp-expires": fmt_time(request.expires_at),
                   "lp-redeemable": fmt_units(request.redeemable, pool.share_decimals)}
    if s.backstop_lp is not None:
        values |= {"lp-backstop-shares": fmt_units(s.backstop_lp.lp_shares, s.backstop_lp.share_decimals),
                   "lp-backstop-assets": fmt_units(s.backstop_lp.lp_assets, d),
                   "lp-backstop-state": s.backstop_lp.request.state if s.backstop_lp.request else "none"}
    return html.Table(html.Tbody([html.Tr([html.Th(LP_ROWS[key]), html.Td(value, id=key)])
                                  for key, value in values.items()]), id="lp-table")


# ---------------------------------------------------------------- app


OUTPUT_IDS = ["head-block", "head-time", "pool-label", "pool-address", "nav", "nav-note", "aps", "aps-note", "apy",
              "apy-note", "pending-redemption", "pending-note", "coverage", "coverage-note", "stressed-loss",
              "stressed-note", "headroom", "headroom-note", "adl-distance", "adl-note", "paid-by-pools", "paid-note",
              "socialized", "socialized-note", "nav-graph", "aps-graph",
              "redemptions", "nearest", "events", "lp-panel"]


def create_app(system: System, *, reports_dir: str | Path = "reports", size_path: str | Path | None = None,
               start_block: int = 0, names: dict[str, str] | None = None, source: str = "",
               default_segment: str | None = None, refresh_ms: int = REFRESH_MS) -> Dash:
    """The dashboard over `system`. `size_path` defaults to reports_dir/size.json (read again at every refresh, so
    a `make size` run shows up); `names` labels known addresses; the page polls for a new block every refresh_ms."""
    reports = Path(reports_dir).resolve()
    size_path = Path(size_path) if size_path is not None else reports / "size.json"
    names = {system.vault.address: "vault", system.backstop.address: "backstop",
             **{pool.address: f"{label} pool" for label, pool in system.pools.items()}, **(names or {})}
    cache = data.Cache()
    lock = threading.Lock()  # one chain read at a time: the provider is shared with whoever else uses ape
    labels = list(system.pools)
    app = Dash(__name__, serve_locally=True, title="Backstop dashboard", update_title=None)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + CSS + "</style>")
    app.layout = layout(labels, default_segment or labels[0], source, data.plots(reports), refresh_ms)

    @app.server.route("/reports/<name>")
    def report_png(name: str):
        if name not in data.plots(reports):  # only the known plots: never an arbitrary file of reports/
            abort(404)
        return send_from_directory(reports, name)

    # The renderer drops the result of a callback that is asked again while it runs: a refresh (dozens of chain reads)
    # asked by a free-running tick would never be shown once it takes longer than a tick (a loaded machine, a long
    # chain). So the tick is one-shot: each refresh, when it returns, re-arms it for exactly one more tick, and a tick
    # never overtakes the refresh it asks for. A segment or LP change during a refresh supersedes it, which is right.
    @app.callback([Output(i, "figure" if i.endswith("graph") else "children") for i in OUTPUT_IDS]
                  + [Output("lp-error", "children"), Output("read-error", "children"), Output("head-seen", "data"),
                     Output("tick", "max_intervals")],
                  Input("tick", "n_intervals"), Input("segment", "value"), Input("lp-address", "value"),
                  State("head-seen", "data"))
    def refresh(ticks, label, lp_text, seen):
        unchanged = [no_update] * len(OUTPUT_IDS)
        rearm = (ticks or 0) + 1
        with lock:
            try:
                now = data.head()
                key = [now.number, now.hash, label, lp_text]
                if seen == key:
                    return unchanged + [no_update] * 3 + [rearm]  # no new block, same inputs: nothing to redraw
                try:
                    lp, lp_error = data.parse_address(lp_text), ""
                except ValueError as exc:
                    lp, lp_error = None, str(exc)
                sizing = data.load_sizing(size_path)
                snapshot = data.read_segment(system, label, lp, sizing, str(size_path) if sizing else None,
                                             start_block, cache)
                out = render(snapshot, names)
            except Exception as exc:  # a node gone or a view reverting: say so on the page, keep the last figures
                return unchanged + [no_update, f"chain read failed: {type(exc).__name__}: {exc}", None, rearm]
        return [out[i] for i in OUTPUT_IDS] + [lp_error, "", key, rearm]

    return app


def quiet_requests() -> None:
    """werkzeug logs every request at INFO: the page polls every REFRESH_MS, which would flood the terminal."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def serve(app: Dash, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve in the foreground until interrupted (Ctrl-C)."""
    quiet_requests()
    server = make_server(host, port, app.server, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@dataclass
class BackgroundServer:
    """The app on a werkzeug server in a daemon thread (port 0 = a free port); `stop()` shuts it down."""

    app: Dash
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        quiet_requests()
        self._server = make_server(self.host, self.port, self.app.server, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="dashboard", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0; background: #f6f7f9;
       color: #1d2330; }
.page { max-width: 1280px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 24px; margin: 8px 0 2px; } h2 { font-size: 18px; margin: 28px 0 8px; }
.subtitle { color: #5b6475; font-size: 13px; }
.controls { display: flex; gap: 24px; margin: 16px 0 4px; align-items: flex-end; }
.control { display: flex; flex-direction: column; gap: 4px; font-size: 13px; color: #5b6475; min-width: 220px; }
.address { width: 420px; padding: 6px 8px; font-family: ui-monospace, monospace; font-size: 13px; }
.error { color: #b42318; font-size: 13px; min-height: 16px; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; }
.card { background: white; border-radius: 8px; padding: 12px 14px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card-title { font-size: 12px; color: #5b6475; text-transform: uppercase; letter-spacing: .04em; }
.card-value { font-size: 20px; font-weight: 600; margin: 4px 0; font-variant-numeric: tabular-nums; }
.card-note { font-size: 12px; color: #5b6475; }
.graphs { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; margin-top: 12px; }
table { border-collapse: collapse; background: white; width: 100%; font-size: 13px;
        box-shadow: 0 1px 2px rgba(0,0,0,.08); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #eceef2; font-variant-numeric: tabular-nums; }
th { color: #5b6475; font-weight: 500; }
.mono { font-family: ui-monospace, monospace; font-size: 13px; color: #5b6475; }
.empty { color: #5b6475; font-size: 13px; padding: 8px 0; }
#plots { display: flex; flex-wrap: wrap; gap: 12px; } .plot { max-width: 600px; width: 100%; }
figure { margin: 0; } figcaption { font-size: 12px; color: #5b6475; }
"""
