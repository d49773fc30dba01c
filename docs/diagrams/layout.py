"""Layouts: a layered left-to-right drawing for state graphs.

The state graph layout follows the usual layered ("Sugiyama") recipe, kept small:

1. cycles are broken by reversing back edges (drawn with the arrowhead at the other end);
2. each state goes in the column of its longest path from the start;
3. between two state columns sits a label column: every edge passes through its own label box
   there, and through a thin "waypoint" in every further column it crosses, so labels are laid out
   like nodes and can never overlap a state, an arrow's label, or each other;
4. the order within each column is improved by barycentre sweeps (fewer crossings);
5. vertical positions are relaxed toward neighbours under minimum-gap constraints.

Inside a column everything is horizontal; curves only run in the gaps between columns, so an
arrow never crosses a box.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from docs.diagrams.svg import (
    INK,
    LINE,
    PAPER,
    SHADE,
    Canvas,
    _num,
    text_width,
    widest,
    wrap,
)

NODE_SIZE = 14.0
LABEL_SIZE = 13.0
NODE_LINE = 17.0
LABEL_LINE = 16.0
LABEL_WRAP = 96.0
NODE_WRAP = 120.0
GAP_X = 30.0
START_R = 9.0
LOOP_HEIGHT = 22.0
LOOP_GAP = 6.0  # between the stacked labels of several loops on one state


@dataclass
class GraphNode:
    key: str
    label: str
    kind: str = "state"  # "start", "state" or "final"


@dataclass
class GraphEdge:
    source: str
    target: str
    label: str
    data: dict[str, str] = field(default_factory=dict)


@dataclass
class _Item:
    """Something placed in a column: a state, an edge label, or an edge's waypoint."""

    key: str
    kind: str  # "node", "label", "point"
    width: float
    height: float
    lines: list[str] = field(default_factory=list)
    rank: int = 0
    y: float = 0.0  # centre
    x: float = 0.0  # centre
    box_width: float = 0.0  # a state's own box; ``width`` also covers a self-loop's label


@dataclass
class _Chain:
    edge: GraphEdge
    reversed: bool
    items: list[str]  # item keys from the left end to the right end, both states included


@dataclass
class StateGraphLayout:
    """A laid-out graph: its size, and ``paint`` to draw it at the origin of a canvas."""

    width: float
    height: float
    paint: Callable[[Canvas], None]


def _node_box(node: GraphNode) -> tuple[list[str], float, float]:
    if node.kind == "start":
        return [], START_R * 2, START_R * 2
    lines = wrap(node.label, NODE_WRAP, NODE_SIZE, bold=True, max_lines=4)
    width = max(widest(lines, NODE_SIZE, bold=True) + 22, 80)
    height = max(len(lines) * NODE_LINE + 18, 38)
    return lines, width, height


def _ranks(nodes: list[GraphNode], edges: list[GraphEdge]) -> tuple[dict[str, int], set[int]]:
    """Longest-path columns, and the indexes of edges reversed to break cycles."""
    order = {n.key: i for i, n in enumerate(nodes)}
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for index, edge in enumerate(edges):
        if edge.source != edge.target:
            out[edge.source].append((index, edge.target))
    reversed_edges: set[int] = set()
    state: dict[str, int] = {}  # 1 on the DFS stack, 2 done

    def visit(key: str) -> None:
        stack = [(key, iter(out[key]))]
        state[key] = 1
        while stack:
            current, children = stack[-1]
            for index, target in children:
                if state.get(target) == 1:
                    reversed_edges.add(index)
                elif target not in state:
                    state[target] = 1
                    stack.append((target, iter(out[target])))
                    break
            else:
                state[current] = 2
                stack.pop()

    for node in sorted(nodes, key=lambda n: (n.kind != "start", order[n.key])):
        if node.key not in state:
            visit(node.key)

    preds: dict[str, list[str]] = defaultdict(list)
    indegree = {n.key: 0 for n in nodes}
    succ: dict[str, list[str]] = defaultdict(list)
    for index, edge in enumerate(edges):
        if edge.source == edge.target:
            continue
        a, b = (edge.target, edge.source) if index in reversed_edges else (edge.source, edge.target)
        succ[a].append(b)
        preds[b].append(a)
        indegree[b] += 1
    rank = {n.key: 0 for n in nodes}
    ready = [n.key for n in nodes if indegree[n.key] == 0]
    while ready:
        key = ready.pop(0)
        for target in succ[key]:
            rank[target] = max(rank[target], rank[key] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    return rank, reversed_edges


def _crossings(layers: list[list[str]], links: set[tuple[str, str]]) -> int:
    total = 0
    for left, right in zip(layers, layers[1:], strict=False):
        pos_l = {k: i for i, k in enumerate(left)}
        pos_r = {k: i for i, k in enumerate(right)}
        segs = sorted((pos_l[a], pos_r[b]) for a, b in links if a in pos_l and b in pos_r)
        for i, (a1, b1) in enumerate(segs):
            for a2, b2 in segs[i + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _isotonic(desired: list[float], weights: list[float]) -> list[float]:
    """Pool adjacent violators: the non-decreasing sequence closest to ``desired``."""
    blocks: list[list[float]] = []  # [value, weight, count]
    for value, weight in zip(desired, weights, strict=True):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    result: list[float] = []
    for value, _weight, count in blocks:
        result.extend([value] * int(count))
    return result


def _mean(values: list[int], fallback: int) -> float:
    return sum(values) / len(values) if values else float(fallback)


def _gap(a: _Item, b: _Item) -> float:
    kinds = {a.kind, b.kind}
    if kinds == {"node"}:
        return 30.0
    if "point" in kinds:
        return 14.0
    if kinds == {"label"}:
        return 12.0
    return 16.0


def layered(nodes: list[GraphNode], edges: list[GraphEdge]) -> StateGraphLayout:
    """Lay out and draw a state graph; returns the drawing and its size (origin at 0, 0)."""
    rank, reversed_edges = _ranks(nodes, edges)
    items: dict[str, _Item] = {}
    for node in nodes:
        lines, width, height = _node_box(node)
        items[node.key] = _Item(
            node.key, "node", width, height, lines, rank=2 * rank[node.key], box_width=width
        )

    loops: dict[str, list[GraphEdge]] = defaultdict(list)
    chains: list[_Chain] = []
    for index, edge in enumerate(edges):
        if edge.source == edge.target:
            loops[edge.source].append(edge)
            continue
        is_back = index in reversed_edges
        left, right = (edge.target, edge.source) if is_back else (edge.source, edge.target)
        keys = [left]
        for r in range(items[left].rank + 1, items[right].rank):
            key = f"e{index}r{r}"
            if r == items[left].rank + 1:
                lines = wrap(edge.label, LABEL_WRAP, LABEL_SIZE, max_lines=4)
                width = widest(lines, LABEL_SIZE) + 10
                items[key] = _Item(key, "label", width, len(lines) * LABEL_LINE + 4, lines, rank=r)
            else:
                items[key] = _Item(key, "point", 2, 2, rank=r)
            keys.append(key)
        keys.append(right)
        chains.append(_Chain(edge, is_back, keys))

    # A self-loop sits above its state: reserve the room.
    loop_room: dict[str, float] = {}
    for key, own in loops.items():
        lines = [line for e in own for line in wrap(e.label, LABEL_WRAP, LABEL_SIZE, max_lines=4)]
        loop_room[key] = LOOP_HEIGHT + 4 + len(lines) * LABEL_LINE + (len(own) - 1) * LOOP_GAP
        items[key].height += loop_room[key]
        items[key].width = max(items[key].width, widest(lines, LABEL_SIZE) + 10)

    links: set[tuple[str, str]] = set()
    for chain in chains:
        for a, b in zip(chain.items, chain.items[1:], strict=False):
            links.add((a, b))
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(links):
        preds[b].append(a)
        succs[a].append(b)

    top = max(item.rank for item in items.values())
    layers: list[list[str]] = [[] for _ in range(top + 1)]
    # Initial order: states in the order given, each edge's items in edge order.
    for node in nodes:
        layers[items[node.key].rank].append(node.key)
    for chain in chains:
        for key in chain.items[1:-1]:
            layers[items[key].rank].append(key)

    best = [list(layer) for layer in layers]
    best_cost = _crossings(layers, links)
    for sweep in range(16):
        downward = sweep % 2 == 0
        indexes = range(1, top + 1) if downward else range(top - 1, -1, -1)
        for i in indexes:
            ref = layers[i - 1] if downward else layers[i + 1]
            pos = {k: p for p, k in enumerate(ref)}
            neighbours = preds if downward else succs

            def key_of(
                k: str,
                i: int = i,
                pos: dict[str, int] = pos,
                neighbours: dict[str, list[str]] = neighbours,
            ) -> float:
                around = [pos[n] for n in neighbours[k] if n in pos]
                return sum(around) / len(around) if around else float(layers[i].index(k))

            layers[i] = sorted(layers[i], key=key_of)
        count = _crossings(layers, links)
        if count < best_cost:
            best, best_cost = [list(layer) for layer in layers], count
    layers = best

    # Vertical positions: stack, then relax toward the neighbours' centres.
    def place(layer: list[str], desired: dict[str, float]) -> None:
        offsets = [0.0]
        for a, b in zip(layer, layer[1:], strict=False):
            ia, ib = items[a], items[b]
            offsets.append(offsets[-1] + ia.height / 2 + _gap(ia, ib) + ib.height / 2)
        wanted = [desired[k] - off for k, off in zip(layer, offsets, strict=True)]
        weights = [3.0 if items[k].kind != "node" else 1.0 for k in layer]
        solved = _isotonic(wanted, weights)
        for key, z, off in zip(layer, solved, offsets, strict=True):
            items[key].y = z + off

    def centre(key: str) -> float:
        item = items[key]
        room = loop_room.get(key, 0.0)
        return item.y + room / 2  # the box itself sits below its loop

    def weight(a: str, b: str) -> float:
        """How strongly the segment a→b wants to be level: long edges most, then the arrival
        at a state, least the departure from one (so fans open at their source)."""
        ka, kb = items[a].kind, items[b].kind
        if ka != "node" and kb != "node":
            return 8.0
        if ka != "node":
            return 3.0
        return 1.0

    def _desire(key: str, downward: bool, both: bool) -> float:
        """Where an item would like its centre: the weighted mean of its neighbours'."""
        pairs: list[tuple[float, float]] = []
        if both or downward:
            pairs += [(centre(n), weight(n, key)) for n in preds[key]]
        if both or not downward:
            pairs += [(centre(n), weight(key, n)) for n in succs[key]]
        if not pairs:
            return centre(key)
        return sum(y * w for y, w in pairs) / sum(w for _, w in pairs)

    def relax(layers: list[list[str]]) -> float:
        """Place every item; returns how far from level the segments are (lower is better)."""
        for layer in layers:
            y = 0.0
            for position, key in enumerate(layer):
                item = items[key]
                if position:
                    prev = items[layer[position - 1]]
                    y += prev.height / 2 + _gap(prev, item) + item.height / 2
                else:
                    y = item.height / 2
                item.y = y
        for sweep in range(40):
            downward = sweep % 2 == 0
            both = sweep >= 20
            indexes = range(1, top + 1) if downward else range(top - 1, -1, -1)
            for i in indexes:
                desired: dict[str, float] = {}
                for key in layers[i]:
                    desired[key] = _desire(key, downward, both) - loop_room.get(key, 0) / 2
                place(layers[i], desired)
        return sum(weight(a, b) * (centre(a) - centre(b)) ** 2 for a, b in links)

    def resorted(layers: list[list[str]], changed: int) -> list[list[str]]:
        """After a swap in layer ``changed``, let the layers on both sides follow it."""
        out = [list(layer) for layer in layers]

        def follow(j: int, ref: list[str], neighbours: dict[str, list[str]]) -> None:
            pos = {k: p for p, k in enumerate(ref)}
            own = {k: p for p, k in enumerate(out[j])}
            out[j] = sorted(
                out[j], key=lambda k: _mean([pos[n] for n in neighbours[k] if n in pos], own[k])
            )

        for j in range(changed - 1, -1, -1):
            follow(j, out[j + 1], succs)
        for j in range(changed + 1, len(out)):
            follow(j, out[j - 1], preds)
        return out

    # Swapping neighbours in a column sometimes levels the main path (the tie-breaks of the
    # ordering can't see that); keep a swap when it adds no crossing and levels things more.
    cost = relax(layers)
    crossings = _crossings(layers, links)
    improved = True
    rounds = 0
    while improved and rounds < 4:
        improved = False
        rounds += 1
        for index in range(len(layers)):
            for i in range(len(layers[index]) - 1):
                trial_layers = [list(layer) for layer in layers]
                layer = trial_layers[index]
                layer[i], layer[i + 1] = layer[i + 1], layer[i]
                trial_layers = resorted(trial_layers, index)
                trial_crossings = _crossings(trial_layers, links)
                if trial_crossings > crossings:
                    continue
                trial = relax(trial_layers)
                if trial < cost * 0.9 - 1.0 or trial_crossings < crossings:
                    layers, cost, crossings, improved = trial_layers, trial, trial_crossings, True
    relax(layers)

    low = min(item.y - item.height / 2 for item in items.values())
    for item in items.values():
        item.y -= low

    # Columns: a state column is as wide as its widest state; others as their widest label.
    widths = [max([items[k].width for k in layer] + [12.0]) for layer in layers]
    lefts: list[float] = []
    x = 0.0
    for width in widths:
        lefts.append(x)
        x += width + GAP_X
    total_width = x - GAP_X
    total_height = max(item.y + item.height / 2 for item in items.values())
    for item in items.values():
        item.x = lefts[item.rank] + widths[item.rank] / 2

    # Ports: the arrows at one side of a state are spread along it, in the order they arrive.
    def ports(key: str, others: list[tuple[int, str]]) -> dict[int, float]:
        item = items[key]
        box_h = item.height - loop_room.get(key, 0.0)
        mid = centre(key)
        if len(others) <= 1:
            return {i: mid for i, _ in others}
        ordered = sorted(others, key=lambda pair: items[pair[1]].y)
        step = min(12.0, (box_h - 10) / (len(ordered) - 1)) if box_h > 10 else 0.0
        first = mid - step * (len(ordered) - 1) / 2
        return {i: first + n * step for n, (i, _) in enumerate(ordered)}

    right_side: dict[str, list[tuple[int, str]]] = defaultdict(list)
    left_side: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for index, chain in enumerate(chains):
        right_side[chain.items[0]].append((index, chain.items[1]))
        left_side[chain.items[-1]].append((index, chain.items[-2]))
    out_port: dict[int, float] = {}
    in_port: dict[int, float] = {}
    for key, others in right_side.items():
        out_port.update(ports(key, others))
    for key, others in left_side.items():
        in_port.update(ports(key, others))

    node_kind = {n.key: n.kind for n in nodes}

    def paint(draw: Canvas) -> None:
        def col_left(rank: int) -> float:
            return lefts[rank]

        def col_right(rank: int) -> float:
            return lefts[rank] + widths[rank]

        # Edges first, so boxes and label backgrounds sit on top of line ends.
        for index, chain in enumerate(chains):
            first, last = items[chain.items[0]], items[chain.items[-1]]
            is_start = node_kind[first.key] == "start"
            x0 = first.x + (START_R if is_start else first.box_width / 2)
            y0 = out_port[index]
            d = [f"M{_num(x0)} {_num(y0)}", f"H{_num(col_right(first.rank))}"]
            px, py = col_right(first.rank), y0
            for key in chain.items[1:-1]:
                item = items[key]
                lx = col_left(item.rank)
                d.append(_curve(px, py, lx, item.y))
                d.append(f"H{_num(col_right(item.rank))}")
                px, py = col_right(item.rank), item.y
            y1 = in_port[index]
            end_x = last.x - last.box_width / 2
            d.append(_curve(px, py, col_left(last.rank), y1))
            if end_x > col_left(last.rank):
                d.append(f"H{_num(end_x)}")
            edge = chain.edge
            draw.open_group(
                class_="edge",
                data_source=edge.source,
                data_target=edge.target,
                data_label=edge.label,
                **{f"data_{k}": v for k, v in edge.data.items()},
            )
            draw.path(
                " ".join(d), stroke=LINE, width=1.6, arrow=True, arrow_at_start=chain.reversed
            )
            label = items[chain.items[1]] if len(chain.items) > 2 else None
            if label is not None and label.kind == "label":
                draw.rect(
                    label.x - label.width / 2,
                    label.y - label.height / 2,
                    label.width,
                    label.height,
                    fill=PAPER,
                    stroke=None,
                )
                draw.text_block(
                    label.x, label.y, label.lines, size=LABEL_SIZE, line_height=LABEL_LINE
                )
            draw.close_group()

        for node in nodes:
            item = items[node.key]
            room = loop_room.get(node.key, 0.0)
            box_top = item.y - item.height / 2 + room
            box_h = item.height - room
            cy = box_top + box_h / 2
            if node.kind == "start":
                draw.open_group(class_="node node--start", data_state=node.key)
                draw.circle(item.x, cy, START_R, fill=INK)
                draw.close_group()
                continue
            box_w = item.box_width
            left = item.x - box_w / 2
            draw.open_group(class_=f"node node--{node.kind}", data_state=node.key)
            if node.kind == "final":
                draw.rect(
                    left, box_top, box_w, box_h, fill=SHADE, stroke=INK, stroke_width=1.5, rx=8
                )
                draw.rect(
                    left + 3.5,
                    box_top + 3.5,
                    box_w - 7,
                    box_h - 7,
                    fill="none",
                    stroke=INK,
                    stroke_width=1,
                    rx=5,
                )
            else:
                draw.rect(left, box_top, box_w, box_h, fill=PAPER, stroke=INK, stroke_width=2, rx=8)
            draw.text_block(
                item.x, cy, item.lines, size=NODE_SIZE, bold=True, line_height=NODE_LINE
            )
            draw.close_group()
            above = box_top - LOOP_HEIGHT - 4
            for loop in loops.get(node.key, []):
                above = _draw_loop(draw, item.x, box_top, box_w, loop, above)

    return StateGraphLayout(total_width, total_height, paint)


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    if abs(y1 - y2) < 0.5:
        return f"L{_num(x2)} {_num(y2)}"
    mid = (x1 + x2) / 2
    return f"C{_num(mid)} {_num(y1)} {_num(mid)} {_num(y2)} {_num(x2)} {_num(y2)}"


def _draw_loop(
    draw: Canvas, cx: float, top: float, width: float, edge: GraphEdge, above: float
) -> float:
    """A self-loop over a state's top edge, its label ending at ``above``; returns where the
    next loop's label (if any) must end, so several loops stack their labels."""
    lines = wrap(edge.label, LABEL_WRAP, LABEL_SIZE, max_lines=4)
    a, b = cx + min(width / 4, 24), cx - min(width / 4, 24)
    peak = top - LOOP_HEIGHT
    draw.open_group(
        class_="edge edge--loop",
        data_source=edge.source,
        data_target=edge.target,
        data_label=edge.label,
        **{f"data_{k}": v for k, v in edge.data.items()},
    )
    draw.path(
        f"M{_num(a)} {_num(top)} "
        f"C{_num(a)} {_num(peak)} {_num(b)} {_num(peak)} {_num(b)} {_num(top)}",
        stroke=LINE,
        width=1.6,
        arrow=True,
    )
    height = len(lines) * LABEL_LINE
    draw.text_block(cx, above - height / 2, lines, size=LABEL_SIZE, line_height=LABEL_LINE)
    draw.close_group()
    return above - height - LOOP_GAP


def legend(
    draw: Canvas, x: float, y: float, *, final_label: str = "final state"
) -> tuple[float, float]:
    """The key to the state drawings at (x, y) top-left; returns its width and height."""
    size = 13.0
    draw.open_group(class_="legend")
    draw.circle(x + START_R, y + 12, START_R, fill=INK)
    cursor = x + START_R * 2 + 8
    draw.text(cursor, y + 16.5, "start", size=size)
    cursor += text_width("start", size) + 24
    draw.rect(cursor, y + 2, 36, 20, fill=PAPER, stroke=INK, stroke_width=2, rx=5)
    cursor += 44
    draw.text(cursor, y + 16.5, "state", size=size)
    cursor += text_width("state", size) + 24
    draw.rect(cursor, y + 2, 36, 20, fill=SHADE, stroke=INK, stroke_width=1.5, rx=5)
    draw.rect(cursor + 3, y + 5, 30, 14, fill="none", stroke=INK, stroke_width=1, rx=3)
    cursor += 44
    draw.text(cursor, y + 16.5, final_label, size=size)
    cursor += text_width(final_label, size) + 24
    draw.path(
        f"M{_num(cursor)} {_num(y + 12)} H{_num(cursor + 36)}", stroke=LINE, width=1.6, arrow=True
    )
    cursor += 44
    draw.text(cursor, y + 16.5, "transition, labelled with its cause", size=size)
    cursor += text_width("transition, labelled with its cause", size)
    draw.close_group()
    return cursor - x, 24.0
