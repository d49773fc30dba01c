"""``roles-matrix``: which active entitlements allow each scope in each environment.

Rows are the scopes some active entitlement grants; columns are environments, with the approval
chain their tier needs. Without an argument every environment is shown and a cell names the
systems (a security admin's overview that fits on a page); with an environment slug one
environment is shown and a cell names each entitlement. Break-glass (emergency-capable)
entitlements and entitlements with their own approval policy are marked, and the groups that
matter (on-call, security-admin) are explained under the matrix, from the live data.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from accessreq.models import ApprovalPolicy, ApproverRule, Entitlement, Environment, RiskTier
from accessreq.policy import stages_for
from docs.diagrams import mermaid
from docs.diagrams.base import (
    MARGIN,
    Choice,
    UnknownArgument,
    document,
    drawn_at,
    heading,
    heading_width,
    ordered_environments,
    tier_label,
)
from docs.diagrams.svg import (
    ALERT,
    INK,
    MUTED,
    PAPER,
    RULE,
    SHADE,
    Canvas,
    badge_width,
    text_width,
    wrap,
)
from portal.models import User
from portal.roles import ON_CALL, SECURITY_ADMIN

BODY = 13.0
LINE_H = 17.0
PAD = 10.0
HEAD_W = 168.0
BG_LABEL = "break-glass"
OWN_LABEL = "own policy"
# Tier badges differ in lightness (and say their tier), so they survive grayscale printing.
TIER_STYLE: dict[str, tuple[str, str]] = {
    RiskTier.LOW: (PAPER, INK),
    RiskTier.MEDIUM: ("#dde3ea", INK),
    RiskTier.HIGH: ("#8a96a3", INK),
    RiskTier.CRITICAL: (INK, PAPER),
}


def choices() -> list[Choice]:
    return [
        Choice(env.slug, f"{env.name} ({tier_label(env.risk_tier).lower()})", "Environment")
        for env in ordered_environments()
    ]


@dataclass
class Entry:
    """What a cell lists: one entitlement (one environment) or one system (all environments)."""

    text: str
    emergency: bool
    own_policy: bool
    count: int = 1
    ids: list[int] = field(default_factory=list)


@dataclass
class Column:
    env: Environment
    approval: str  # the tier's chain in words


@dataclass
class Matrix:
    title: str
    subtitle: str
    columns: list[Column]
    scopes: list[tuple[str, str]]  # slug, description
    cells: dict[tuple[str, int], list[Entry]]  # (scope slug, environment id) -> entries
    notes: list[str]
    single: bool
    entitlements: list[Entitlement]


def _approval_words(tier: str) -> str:
    stages = stages_for(Entitlement(environment=Environment(risk_tier=tier)))
    steps = " → ".join(
        s["rule_label"] + (f" ×{s['quorum']}" if s["quorum"] > 1 else "") for s in stages
    )
    step_up = any(s["step_up"] for s in stages)
    return steps + (", step-up MFA" if step_up else "")


def _security_admin_duties() -> list[str]:
    duties = []
    for policy in ApprovalPolicy.objects.prefetch_related("stages").order_by("name"):
        for stage in policy.stages.all():
            if stage.approver_rule == ApproverRule.SECURITY_ADMIN:
                owner = (
                    f"the {tier_label(policy.tier).lower()} tier"
                    if policy.tier
                    else f"policy “{policy.name}”"
                )
                duties.append(f"stage {stage.position} of {owner}")
    return duties


def _build(argument: str) -> Matrix:
    environments = ordered_environments()
    if argument:
        chosen = [e for e in environments if e.slug == argument]
        if not chosen:
            known = ", ".join(e.slug for e in environments) or "none yet"
            raise UnknownArgument(
                f"There is no environment called “{argument}”. Choose one of: {known}."
            )
        environments = chosen
    single = bool(argument)
    entitlements = list(
        Entitlement.objects.filter(is_active=True, environment__in=environments)
        .select_related("system", "environment")
        .prefetch_related("scopes")
        .order_by("system__name", "name")
    )
    scope_names: dict[str, str] = {}
    grants: dict[tuple[str, int], list[Entitlement]] = defaultdict(list)
    for ent in entitlements:
        for scope in ent.scopes.all():
            scope_names[scope.slug] = scope.description
            grants[(scope.slug, ent.environment_id)].append(ent)
    cells: dict[tuple[str, int], list[Entry]] = {}
    for key, ents in grants.items():
        if single:
            cells[key] = [
                Entry(
                    f"{e.system.name} / {e.name}", e.emergency_capable, bool(e.policy_id), 1, [e.pk]
                )
                for e in ents
            ]
            continue
        by_system: dict[str, list[Entitlement]] = defaultdict(list)
        for e in ents:
            by_system[e.system.name].append(e)
        cells[key] = [
            Entry(
                name if len(group) == 1 else f"{name} ×{len(group)}",
                any(e.emergency_capable for e in group),
                any(e.policy_id for e in group),
                len(group),
                [e.pk for e in group],
            )
            for name, group in by_system.items()
        ]
    columns = [Column(env, _approval_words(env.risk_tier)) for env in environments]

    on_call = User.objects.filter(is_active=True, groups__name=ON_CALL).distinct().count()
    admins = User.objects.filter(is_active=True, groups__name=SECURITY_ADMIN).distinct().count()
    emergency = sum(1 for e in entitlements if e.emergency_capable)
    where = f" in {environments[0].name}" if single else ""
    notes = [
        f"on-call group ({_count(on_call, 'person', 'people')}): may take the "
        f"{_count(emergency, 'entitlement')}{where} marked {BG_LABEL} at once, without approval, "
        "for a short time; an approver reviews each use afterwards.",
    ]
    duties = _security_admin_duties()
    approves = (
        "approves " + ", ".join(duties) + ", and any stage left with nobody else to ask"
        if duties
        else "approves any stage left with nobody else to ask"
    )
    notes.append(f"security-admin group ({_count(admins, 'person', 'people')}): {approves}.")
    if any(e.policy_id for e in entitlements):
        notes.append(
            f"{OWN_LABEL}: the entitlement has its own approval policy instead of its "
            "environment's tier policy; the approval-chain diagram for the environment shows it."
        )
    if single:
        env = environments[0]
        title = f"Roles matrix: scopes in {env.name}"
        subtitle = (
            f"{len(entitlements)} active entitlements in {env.name} "
            f"({tier_label(env.risk_tier).lower()} tier) · {drawn_at()}"
        )
    else:
        title = "Roles matrix: scopes by environment"
        subtitle = (
            f"{len(entitlements)} active entitlements; each cell names the systems whose "
            f"entitlements allow the scope there · {drawn_at()}"
        )
    return Matrix(
        title,
        subtitle,
        columns,
        sorted(scope_names.items()),
        cells,
        notes,
        single,
        entitlements,
    )


def _count(count: int, one: str, many: str = "") -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


# --- Drawing ---------------------------------------------------------------------------------


@dataclass
class _Row:
    slug: str
    name_lines: list[str]
    description_lines: list[str]
    cells: dict[int, tuple[list[list[_Placed]], float]]  # environment id -> stacks, height
    height: float


@dataclass
class _Grid:
    """The matrix measured: rows (scope, its description lines, cells, height) and columns."""

    rows: list[_Row]
    env_lines: dict[int, list[str]]
    cell_w: dict[int, float]
    head_lines: dict[int, list[str]]
    head_h: float
    sub_w: float

    @property
    def width(self) -> float:
        return HEAD_W + sum(self.cell_w.values())


@dataclass
class _Placed:
    lines: list[str]
    entry: Entry


def _badges_width(entry: Entry) -> float:
    width = 0.0
    if entry.emergency:
        width += badge_width(BG_LABEL) + 6
    if entry.own_policy:
        width += badge_width(OWN_LABEL, bold=False) + 6
    return width


def _entry_height(placed: _Placed) -> float:
    return len(placed.lines) * LINE_H + 4


def _tier_badge(draw: Canvas, x: float, y: float, tier: str) -> float:
    fill, ink = TIER_STYLE.get(tier, (PAPER, INK))
    return draw.badge(x, y, f"{tier_label(tier)} tier", fill=fill, ink=ink, stroke=INK)


def _draw_entry(draw: Canvas, x: float, y: float, width: float, placed: _Placed) -> None:
    entry = placed.entry
    draw.open_group(
        class_="entry",
        data_entitlements=" ".join(str(i) for i in entry.ids),
        data_break_glass="true" if entry.emergency else "false",
    )
    draw.text(x, y + 13, placed.lines, size=BODY, line_height=LINE_H)
    bx = x + width - _badges_width(placed.entry)
    if entry.emergency:
        bx += draw.badge(bx, y, BG_LABEL, fill=ALERT, ink=PAPER) + 6
    if entry.own_policy:
        draw.badge(bx, y, OWN_LABEL, fill=PAPER, ink=INK, stroke=INK, bold=False)
    draw.close_group()


def _draw_table(draw: Canvas, m: Matrix, grid: _Grid, x0: float, top: float) -> float:
    """The matrix itself, top-left at (x0, top); returns its bottom."""
    cell_w, sub_w, table_w = grid.cell_w, grid.sub_w, grid.width
    name_h = max((len(v) for v in grid.env_lines.values()), default=1) * 18
    y = top
    # Header row.
    draw.rect(x0, y, table_w, grid.head_h, fill=SHADE, stroke=None)
    draw.text(x0 + PAD, y + 22, "Scope", size=13, bold=True, fill=MUTED)
    cx = x0 + HEAD_W
    for c in m.columns:
        draw.open_group(class_="env-head", data_environment=c.env.slug, data_tier=c.env.risk_tier)
        draw.text(cx + PAD, y + 22, grid.env_lines[c.env.pk], size=15, bold=True, line_height=18)
        _tier_badge(draw, cx + PAD, y + 12 + name_h, c.env.risk_tier)
        draw.text(
            cx + PAD,
            y + 12 + name_h + 22 + 13,
            grid.head_lines[c.env.pk],
            size=12.5,
            fill=INK,
            line_height=16,
        )
        draw.close_group()
        cx += cell_w[c.env.pk]
    y += grid.head_h

    for index, row in enumerate(grid.rows):
        slug, row_h = row.slug, row.height
        if index % 2:
            draw.rect(x0, y, table_w, row_h, fill="#f6f8fa", stroke=None)
        draw.open_group(class_="scope-row", data_scope=slug)
        draw.text(x0 + PAD, y + PAD + 13, row.name_lines, size=14, bold=True, line_height=18)
        if row.description_lines:
            draw.text(
                x0 + PAD,
                y + PAD + 13 + 18 * len(row.name_lines),
                row.description_lines,
                size=12.5,
                fill=MUTED,
                line_height=16,
            )
        cx = x0 + HEAD_W
        for c in m.columns:
            stacks, _height = row.cells[c.env.pk]
            shown = [p for column in stacks for p in column]
            draw.open_group(
                class_="cell",
                data_scope=slug,
                data_environment=c.env.slug,
                data_count=str(sum(p.entry.count for p in shown)),
            )
            cy = y + PAD
            if not shown:
                draw.text(cx + PAD, cy + 13, "—", size=BODY, fill=MUTED)
            else:
                if not m.single:
                    total = sum(p.entry.count for p in shown)
                    noun = "entitlement" if total == 1 else "entitlements"
                    draw.text(cx + PAD, cy + 12, f"{total} {noun}", size=12, fill=MUTED, bold=True)
                    cy += 18
                sx = cx + PAD
                for column in stacks:
                    ey = cy
                    for item in column:
                        width = sub_w if m.single else cell_w[c.env.pk] - 2 * PAD
                        _draw_entry(draw, sx, ey, width, item)
                        ey += _entry_height(item)
                    sx += sub_w + 18
            draw.close_group()
            cx += cell_w[c.env.pk]
        draw.close_group()
        y += row_h
    # Grid lines on top of the shading.
    table_h = y - top
    draw.rect(x0, top, table_w, table_h, fill="none", stroke=INK, stroke_width=1.5)
    ry = top + grid.head_h
    draw.path(f"M{x0} {ry:.1f} H{x0 + table_w:.1f}", stroke=INK, width=1.5)
    for row in grid.rows[:-1]:
        ry += row.height
        draw.path(f"M{x0} {ry:.1f} H{x0 + table_w:.1f}", stroke=RULE, width=1)
    cx = x0 + HEAD_W
    draw.path(f"M{cx:.1f} {top:.1f} V{top + table_h:.1f}", stroke=INK, width=1.5)
    for c in m.columns[:-1]:
        cx += cell_w[c.env.pk]
        draw.path(f"M{cx:.1f} {top:.1f} V{top + table_h:.1f}", stroke=RULE, width=1)

    return y


def render_svg(argument: str) -> str:
    m = _build(argument)
    draw = Canvas()
    top = heading(draw, m.title, m.subtitle) + 8

    # Widths: each environment column fits its longest entry (name + badges), within limits.
    def fits(entry: Entry) -> float:
        return text_width(entry.text, BODY) + _badges_width(entry) + 4

    entries_by_col = {
        c.env.pk: [e for (slug, env_id), es in m.cells.items() if env_id == c.env.pk for e in es]
        for c in m.columns
    }
    if m.single:
        col = m.columns[0]
        widest_entry = max((fits(e) for e in entries_by_col[col.env.pk]), default=200.0)
        sub_w = min(max(widest_entry, 220.0), 330.0)
        per_row = max(1, min(3, max(len(es) for es in m.cells.values()) if m.cells else 1))
        cell_w = {col.env.pk: per_row * sub_w + (per_row - 1) * 18 + 2 * PAD}
    else:
        sub_w = 0.0
        per_row = 1
        cell_w = {
            c.env.pk: min(
                max(max((fits(e) for e in entries_by_col[c.env.pk]), default=0) + 2 * PAD, 190.0),
                270.0,
            )
            for c in m.columns
        }

    # Column headings: environment, tier badge, the approval the tier needs.
    head_lines = {
        c.env.pk: wrap("Approval: " + c.approval, cell_w[c.env.pk] - 2 * PAD, 12.5, max_lines=4)
        for c in m.columns
    }
    env_lines = {
        c.env.pk: wrap(c.env.name, cell_w[c.env.pk] - 2 * PAD, 15, bold=True, max_lines=2)
        for c in m.columns
    }
    name_h = max((len(v) for v in env_lines.values()), default=1) * 18
    head_h = 8 + name_h + 22 + max((len(v) for v in head_lines.values()), default=1) * 16 + PAD

    # Rows: each scope's cells laid out, the row as tall as its tallest cell.
    rows: list[_Row] = []
    for slug, description in m.scopes:
        name_lines = wrap(slug, HEAD_W - 2 * PAD, 14, bold=True, max_lines=3)
        label_lines = wrap(description, HEAD_W - 2 * PAD, 12.5, max_lines=3) if description else []
        row_h = PAD * 2 + len(name_lines) * 18 + len(label_lines) * 16
        cells: dict[int, tuple[list[list[_Placed]], float]] = {}
        for c in m.columns:
            entries = m.cells.get((slug, c.env.pk), [])
            inner = sub_w if m.single else cell_w[c.env.pk] - 2 * PAD
            placed = [
                _Placed(wrap(e.text, max(inner - _badges_width(e) - 4, 60), BODY, max_lines=5), e)
                for e in entries
            ]
            if m.single and entries:
                per_col = -(-len(placed) // per_row)
                stacks = [placed[i : i + per_col] for i in range(0, len(placed), per_col)]
            else:
                stacks = [placed]
            count_h = 0.0 if m.single or not entries else 18.0
            height = (
                PAD * 2
                + count_h
                + max((sum(_entry_height(p) for p in column) for column in stacks), default=LINE_H)
            )
            cells[c.env.pk] = (stacks, height)
            row_h = max(row_h, height)
        rows.append(_Row(slug, name_lines, label_lines, cells, row_h))

    x0 = MARGIN
    grid = _Grid(rows, env_lines, cell_w, head_lines, head_h, sub_w)
    if rows:
        y = _draw_table(draw, m, grid, x0, top)
    else:
        draw.text(x0, top + 16, "No active entitlement grants any scope here yet.", size=BODY)
        y = top + 24

    # Key and the groups that matter.
    y += 26
    inner_w = max(grid.width, 640.0)
    kx = x0
    kx += draw.badge(kx, y, BG_LABEL, fill=ALERT, ink=PAPER) + 8
    draw.text(kx, y + 13, "on-call people may take it at once (emergency-capable)", size=BODY)
    y += 26
    for note in m.notes:
        lines = wrap(note, inner_w, BODY, max_lines=6)
        draw.text(x0, y + 13, lines, size=BODY, line_height=LINE_H)
        y += len(lines) * LINE_H + 8

    description = _describe(m)
    width = max(inner_w, heading_width(m.title, m.subtitle)) + 2 * MARGIN
    return document("roles-matrix", m.title, description, width, y + MARGIN - 8, draw)


def _describe(m: Matrix) -> str:
    parts = []
    for slug, _description in m.scopes:
        for c in m.columns:
            entries = m.cells.get((slug, c.env.pk), [])
            if entries:
                names = ", ".join(
                    e.text + (" (break-glass)" if e.emergency else "") for e in entries
                )
                parts.append(f"{slug} in {c.env.name}: {names}")
    return f"{m.title}. " + "; ".join(parts) + ". " + " ".join(m.notes)


def render_mermaid(argument: str) -> str:
    m = _build(argument)
    lines = [
        "flowchart LR",
        f"    %% {mermaid.comment(m.title)} · {mermaid.comment(m.subtitle)}",
        "    classDef breakglass stroke-width:3px,stroke-dasharray:6 3",
    ]
    emergency: list[str] = []
    # Scope ids by position, not by slug: two slugs may differ only in "-" and "_".
    scope_ids = {slug: index for index, (slug, _d) in enumerate(m.scopes)}
    for c in m.columns:
        env = c.env
        env_id = mermaid.ident("env", env.pk)
        label = f"{env.name} ({tier_label(env.risk_tier).lower()} tier): {c.approval}"
        lines.append(f"    subgraph {env_id}[{mermaid.quoted(label)}]")
        lines.append("        direction LR")
        used = sorted({slug for (slug, env_pk) in m.cells if env_pk == env.pk})
        for slug in used:
            scope_node = mermaid.ident("scope", env.pk, scope_ids[slug])
            lines.append(f"        {scope_node}[{mermaid.quoted(slug)}]")
        for ent in m.entitlements:
            if ent.environment_id != env.pk:
                continue
            node = mermaid.ident("ent", ent.pk)
            words = f"{ent.system.name} / {ent.name}"
            if ent.emergency_capable:
                words += " (break-glass)"
                emergency.append(node)
            if ent.policy_id:
                words += " (own policy)"
            lines.append(f"        {node}[{mermaid.quoted(words)}]")
            for scope in ent.scopes.all():
                scope_node = mermaid.ident("scope", env.pk, scope_ids[scope.slug])
                lines.append(f"        {node} --> {scope_node}")
        lines.append("    end")
    if emergency:
        lines.append(f"    class {','.join(emergency)} breakglass")
    for note in m.notes:
        lines.append(f"    %% {mermaid.comment(note)}")
    return "\n".join(lines) + "\n"
