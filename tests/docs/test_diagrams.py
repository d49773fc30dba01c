"""The live diagrams: drawn from the code's tables and the database on every call, every name
escaped, Mermaid that a hostile name cannot break, and drawings whose boxes never overlap."""

from __future__ import annotations

import random
import re
import xml.etree.ElementTree as ET  # noqa: S405 - parses our own drawings, never outside input
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accessreq import campaign_states, states
from accessreq.campaign_states import (
    CAMPAIGN_TRANSITIONS,
    ITEM_TRANSITIONS,
    CampaignState,
    ReviewDecision,
    check_campaign_transition,
    check_item_transition,
)
from accessreq.models import ApprovalPolicy, ApproverRule, PolicyStage, RiskTier
from accessreq.policy import DEFAULT_STAGES
from accessreq.states import START, IllegalTransition, RequestState, Transition
from docs.diagrams import DIAGRAMS, UnknownArgument, UnknownDiagram, render_mermaid, render_svg
from docs.diagrams.layout import GraphEdge, GraphNode, layered
from docs.diagrams.svg import Canvas, Document, esc, text_width, wrap
from portal.roles import ON_CALL
from tests.factories import (
    EntitlementFactory,
    EnvironmentFactory,
    SystemFactory,
    UserFactory,
)

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(1)</script> a\"b --> c & 'd' #quot; %%{init}%%"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output; failing to parse is the test


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if cls in (g.get("class") or "").split()]


def edges(svg: str) -> Counter[tuple[str, str, str]]:
    return Counter(
        (g.get("data-source", "?"), g.get("data-target", "?"), g.get("data-label", "?"))
        for g in groups(parse(svg), "edge")
    )


def table(transitions: tuple[Transition, ...]) -> Counter[tuple[str, str, str]]:
    return Counter((str(t.source), str(t.target), t.label) for t in transitions)


def texts(svg: str) -> list[str]:
    return ["".join(t.itertext()) for t in parse(svg).iter(f"{SVG}text")]


# --- The SVG builder ---------------------------------------------------------------------------


def test_escaping_covers_markup_quotes_and_characters_xml_refuses() -> None:
    assert esc('<a href="x">\'&') == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"
    assert esc("bell\x07 and nul\x00") == "bell and nul"


def test_wrap_keeps_every_line_within_the_width_and_keeps_all_words() -> None:
    text = "payments-service-with-a-very-long-name / Administrator of everything important"
    lines = wrap(text, 120, 13, max_lines=10)
    assert all(text_width(line, 13) <= 120 for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert wrap(text, 120, 13, max_lines=2)[-1].endswith("…")


# --- Request lifecycle -------------------------------------------------------------------------


def test_request_lifecycle_draws_exactly_the_transitions_of_the_table() -> None:
    svg = render_svg("request-lifecycle")
    assert edges(svg) == table(states.TRANSITIONS)
    drawn_states = {g.get("data-state") for g in groups(parse(svg), "node")}
    assert drawn_states == {START, *RequestState.values}


def test_a_transition_added_to_the_table_appears_and_a_removed_one_goes(monkeypatch) -> None:
    reopened = Transition(RequestState.DENIED, RequestState.PENDING, "request.reopened", "reopened")
    changed = (*states.TRANSITIONS[:-1], reopened)  # drops active -> revoked, adds a cycle
    monkeypatch.setattr(states, "TRANSITIONS", changed)

    svg = render_svg("request-lifecycle")
    assert edges(svg) == table(changed)
    assert ("denied", "pending", "reopened") in edges(svg)
    assert ("active", "revoked", "revoked") not in edges(svg)
    # Denied has a way out now, so it is no longer drawn as final.
    kinds = {g.get("data-state"): g.get("class") for g in groups(parse(svg), "node")}
    assert kinds["denied"] == "node node--state"

    source = render_mermaid("request-lifecycle")
    assert "n_request_denied --> n_request_pending : reopened" in source
    assert "n_request_active --> n_request_revoked" not in source


def test_final_states_are_the_ones_nothing_leaves_and_are_drawn_differently() -> None:
    root = parse(render_svg("request-lifecycle"))
    kinds = {g.get("data-state"): g.get("class") for g in groups(root, "node")}
    leaving = {str(t.source) for t in states.TRANSITIONS}
    for state, kind in kinds.items():
        if state == START:
            assert kind == "node node--start"
        elif state in leaving:
            assert kind == "node node--state"
        else:
            assert kind == "node node--final", state
    assert {s for s, k in kinds.items() if k == "node node--final"} == set(states.FINAL_STATES)


def test_request_lifecycle_mermaid_has_one_line_per_transition() -> None:
    source = render_mermaid("request-lifecycle")
    lines = source.splitlines()
    assert lines[0] == "stateDiagram-v2"
    arrows = [line.strip() for line in lines if "-->" in line]
    assert len(arrows) == len(states.TRANSITIONS)
    pattern = re.compile(r"^(\[\*\]|n_\w+) --> n_\w+ : [\w #;,.-]+$")
    assert all(pattern.match(line) for line in arrows), arrows
    for transition in states.TRANSITIONS:
        source_id = "[*]" if transition.source == START else f"n_request_{transition.source}"
        assert f"{source_id} --> n_request_{transition.target} : {transition.label}" in arrows


def test_lifecycles_take_no_argument() -> None:
    with pytest.raises(UnknownArgument, match="takes no argument"):
        render_svg("request-lifecycle", "prod")
    with pytest.raises(UnknownArgument):
        render_mermaid("campaign-lifecycle", "x")


# --- Campaign lifecycle ------------------------------------------------------------------------


def test_campaign_lifecycle_draws_both_tables() -> None:
    svg = render_svg("campaign-lifecycle")
    assert edges(svg) == table(CAMPAIGN_TRANSITIONS) + table(ITEM_TRANSITIONS)
    drawn = {g.get("data-state") for g in groups(parse(svg), "node")}
    assert set(CampaignState.values) | set(ReviewDecision.values) <= drawn
    words = texts(svg)
    assert "Expired by" in words and "certifies" in words


def test_campaign_lifecycle_follows_its_table(monkeypatch) -> None:
    extra = Transition(CampaignState.CLOSING, CampaignState.OPEN, "campaign.reopened", "reopened")
    monkeypatch.setattr(
        campaign_states, "CAMPAIGN_TRANSITIONS", (*campaign_states.CAMPAIGN_TRANSITIONS, extra)
    )
    assert ("closing", "open", "reopened") in edges(render_svg("campaign-lifecycle"))
    source = render_mermaid("campaign-lifecycle")
    assert source.startswith("stateDiagram-v2\n")
    assert "n_campaign_closing --> n_campaign_open : reopened" in source
    arrows = [line for line in source.splitlines() if "-->" in line]
    assert len(arrows) == len(CAMPAIGN_TRANSITIONS) + 1 + len(ITEM_TRANSITIONS)


def test_campaign_state_tables_refuse_edges_they_do_not_have() -> None:
    assert check_campaign_transition("open", "closing").label == "deadline reached"
    assert check_item_transition("pending", "certified").action == "review.certified"
    with pytest.raises(IllegalTransition, match="A closed campaign cannot become open"):
        check_campaign_transition("closed", "open")
    with pytest.raises(IllegalTransition, match="review item cannot become pending"):
        check_item_transition("certified", "pending")
    leaving = {t.source for t in CAMPAIGN_TRANSITIONS}
    assert leaving.isdisjoint(campaign_states.FINAL_CAMPAIGN_STATES)
    assert {t.source for t in ITEM_TRANSITIONS}.isdisjoint(campaign_states.FINAL_DECISIONS)


# --- Drawings are well formed, accessible and uncluttered ---------------------------------------


def _boxes(root: ET.Element) -> list[tuple[str, float, float, float, float]]:
    """The state boxes and label backgrounds of each graph, with their graph's offset."""
    found = []
    for graph in root.iter(f"{SVG}g"):
        transform = graph.get("transform") or ""
        if not transform.startswith("translate("):
            continue
        dx, dy = (float(v) for v in transform[10:-1].split())
        for g in graph.iter(f"{SVG}g"):
            cls = g.get("class") or ""
            rect = g.find(f"{SVG}rect")
            if rect is None or not (cls.startswith("node") or cls == "edge"):
                continue
            found.append(
                (
                    f"{cls}:{g.get('data-state') or g.get('data-label')}",
                    dx + float(rect.get("x", 0)),
                    dy + float(rect.get("y", 0)),
                    float(rect.get("width", 0)),
                    float(rect.get("height", 0)),
                )
            )
    return found


@pytest.mark.parametrize("name", ["request-lifecycle", "campaign-lifecycle"])
def test_no_state_or_label_overlaps_another(name: str) -> None:
    boxes = _boxes(parse(render_svg(name)))
    assert len(boxes) > 10
    for i, (a, ax, ay, aw, ah) in enumerate(boxes):
        for b, bx, by, bw, bh in boxes[i + 1 :]:
            apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
            assert apart, (a, b)


@pytest.mark.parametrize("seed", range(40))
def test_random_state_tables_lay_out_without_overlaps(seed: int) -> None:
    """Cycles, self-loops, parallel edges, long names: boxes and labels still never overlap."""
    rnd = random.Random(seed)
    keys = [f"s{i}" for i in range(rnd.randint(2, 8))]
    nodes = [GraphNode(START, "start", "start")] + [
        GraphNode(k, f"State {k} " + "long " * rnd.randint(0, 4)) for k in keys
    ]
    graph_edges = [GraphEdge(START, keys[0], "begin")] + [
        GraphEdge(
            rnd.choice(keys), rnd.choice(keys), "when " + "something happens " * rnd.randint(0, 3)
        )
        for _ in range(rnd.randint(1, 12))
    ]
    plan = layered(nodes, graph_edges)
    draw = Canvas()
    draw.open_group(transform="translate(0 0)")
    plan.paint(draw)
    draw.close_group()
    root = parse(Document("test", "t", "d", plan.width, plan.height, draw).render())
    assert len(groups(root, "edge")) == len(graph_edges)
    boxes = _boxes(root)
    for i, (a, ax, ay, aw, ah) in enumerate(boxes):
        assert ax >= 0 and ax + aw <= plan.width + 0.5 and ay + ah <= plan.height + 0.5, a
        for b, bx, by, bw, bh in boxes[i + 1 :]:
            apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
            assert apart, (a, b)


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(DIAGRAMS))
def test_every_drawing_is_accessible_printable_svg(name: str) -> None:
    EntitlementFactory(emergency_capable=True)
    root = parse(render_svg(name))
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert re.fullmatch(r"0 0 \d+ \d+", root.get("viewBox", ""))
    title_id, desc_id = root.get("aria-labelledby", "").split()
    ids = {el.get("id"): el for el in root.iter() if el.get("id")}
    assert ids[title_id].tag == f"{SVG}title" and ids[title_id].text
    assert ids[desc_id].tag == f"{SVG}desc" and ids[desc_id].text
    # Nothing the strict CSP would block, nothing that runs, no fonts from elsewhere.
    assert not any(el.get("style") for el in root.iter())
    assert not [el for el in root.iter() if el.tag in {f"{SVG}style", f"{SVG}script"}]
    assert "http" not in (root.get("font-family") or "")
    sizes = [float(t.get("font-size", root.get("font-size", "0"))) for t in root.iter(f"{SVG}text")]
    assert sizes and min(sizes) >= 12


# --- Approval chain ----------------------------------------------------------------------------


def _chain(svg: str, tier: str) -> list[tuple[str, str, str]]:
    root = parse(svg)
    chain = next(g for g in groups(root, "chain") if g.get("data-tier") == tier)
    return [
        (g.get("data-rule", ""), g.get("data-quorum", ""), g.get("data-step-up", ""))
        for g in groups(chain, "stage--stage")
    ]


def _expected(stages: list[tuple[str, int, bool]]) -> list[tuple[str, str, str]]:
    return [(str(rule), str(q), "true" if up else "false") for rule, q, up in stages]


@pytest.mark.django_db
def test_approval_chain_shows_every_tier_from_its_policy() -> None:
    svg = render_svg("approval-chain")
    for tier, stages in DEFAULT_STAGES.items():
        assert _chain(svg, tier) == _expected(stages)
    assert "Security admin" in " ".join(texts(svg))


@pytest.mark.django_db
def test_a_policy_change_shows_in_the_next_drawing() -> None:
    policy = ApprovalPolicy.objects.get(tier=RiskTier.HIGH)
    first = policy.stages.get(position=1)
    first.quorum = 2
    first.save()
    PolicyStage.objects.create(
        policy=policy, position=3, approver_rule=ApproverRule.SECURITY_ADMIN, quorum=1
    )

    svg = render_svg("approval-chain", "high")
    assert _chain(svg, RiskTier.HIGH) == [
        (ApproverRule.MANAGER, "2", "true"),
        (ApproverRule.SYSTEM_OWNER, "1", "true"),
        (ApproverRule.SECURITY_ADMIN, "1", "false"),
    ]
    assert "2 approvals, different people" in texts(svg)
    assert "Stage 3: Security admin, 1 approval" in render_mermaid("approval-chain", "high")


@pytest.mark.django_db
def test_a_tier_without_policy_shows_the_built_in_default_and_says_so() -> None:
    ApprovalPolicy.objects.filter(tier=RiskTier.CRITICAL).delete()
    svg = render_svg("approval-chain")
    assert _chain(svg, RiskTier.CRITICAL) == _expected(DEFAULT_STAGES[RiskTier.CRITICAL])
    assert any(
        "No policy for the critical tier: the built-in default applies" in t for t in texts(svg)
    )


@pytest.mark.django_db
def test_approval_chain_for_an_environment_lists_its_overriding_entitlements() -> None:
    prod = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    vault = SystemFactory(name="vault", slug="vault")
    strict = ApprovalPolicy.objects.create(name="Secrets: two owners")
    strict.stages.create(position=1, approver_rule=ApproverRule.ENTITLEMENT_OWNER, quorum=2)
    EntitlementFactory(system=vault, environment=prod, name="Secrets writer", policy=strict)
    EntitlementFactory(system=vault, environment=prod, name="Reader", emergency_capable=True)
    EntitlementFactory(
        system=vault, environment=prod, name="Retired", is_active=False, policy=strict
    )

    svg = render_svg("approval-chain", "prod")
    root = parse(svg)
    chains = groups(root, "chain")
    assert [g.get("data-tier") for g in chains] == ["high", ""]
    override = chains[1]
    assert [
        (g.get("data-rule"), g.get("data-quorum")) for g in groups(override, "stage--stage")
    ] == [(ApproverRule.ENTITLEMENT_OWNER, "2")]
    words = " ".join(texts(svg))
    assert "Own policy “Secrets: two owners”" in words
    assert "vault / Secrets writer" in words and "Retired" not in words
    assert "Break-glass" in words and "vault / Reader" in words


@pytest.mark.django_db
def test_approval_chain_refuses_an_unknown_argument_naming_the_choices() -> None:
    EnvironmentFactory(name="staging", slug="staging", risk_tier=RiskTier.MEDIUM)
    with pytest.raises(UnknownArgument, match="no risk tier or environment called “nowhere”") as e:
        render_svg("approval-chain", "nowhere")
    assert "staging" in str(e.value) and "critical" in str(e.value)
    assert isinstance(e.value, UnknownDiagram)  # the runbook renderer catches this one class


@pytest.mark.django_db
def test_approval_chain_choices_are_tiers_then_environments() -> None:
    EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    choices = DIAGRAMS["approval-chain"].choices()
    assert [(c.group, c.value) for c in choices] == [
        ("Tier", "low"),
        ("Tier", "medium"),
        ("Tier", "high"),
        ("Tier", "critical"),
        ("Environment", "dev"),
        ("Environment", "prod"),
    ]


# --- Roles matrix ------------------------------------------------------------------------------


@pytest.fixture
def catalog(db):
    dev = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    prod = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    payments = SystemFactory(name="payments-service", slug="payments-service")
    vault = SystemFactory(name="vault", slug="vault")
    EntitlementFactory(system=payments, environment=dev, name="Developer", scopes=["deploy"])
    EntitlementFactory(
        system=payments,
        environment=prod,
        name="Deployer",
        scopes=["deploy", "rollback"],
        emergency_capable=True,
    )
    EntitlementFactory(system=vault, environment=prod, name="Reader", scopes=["read-secrets"])
    EntitlementFactory(system=vault, environment=prod, name="Writer", scopes=["read-secrets"])
    EntitlementFactory(
        system=vault, environment=prod, name="Old admin", scopes=["admin"], is_active=False
    )
    UserFactory(groups=[ON_CALL])
    return {"dev": dev, "prod": prod}


def _cells(svg: str) -> dict[tuple[str, str], list[str]]:
    out = {}
    for cell in groups(parse(svg), "cell"):
        entries = [
            "".join("".join(t.itertext()) for t in g.iter(f"{SVG}text"))
            for g in groups(cell, "entry")
        ]
        out[(cell.get("data-scope", ""), cell.get("data-environment", ""))] = entries
    return out


def test_roles_matrix_lists_active_entitlements_per_scope_and_environment(catalog) -> None:
    svg = render_svg("roles-matrix")
    cells = _cells(svg)
    assert cells[("deploy", "dev")] == ["payments-service"]
    assert cells[("deploy", "prod")] == ["payments-servicebreak-glass"]
    assert cells[("read-secrets", "prod")] == ["vault ×2"]
    assert cells[("read-secrets", "dev")] == []
    # Only scopes some active entitlement grants are rows: the retired admin is not.
    assert {scope for scope, _env in cells} == {"deploy", "rollback", "read-secrets"}
    heads = [g.get("data-environment") for g in groups(parse(svg), "env-head")]
    assert heads == ["dev", "prod"]  # lowest tier first
    words = " ".join(texts(svg))
    assert "on-call group (1 person): may take the 1 entitlement marked break-glass" in words
    assert "security-admin group" in words and "stage 3 of the critical tier" in words


def test_roles_matrix_for_one_environment_names_each_entitlement(catalog) -> None:
    svg = render_svg("roles-matrix", "prod")
    cells = _cells(svg)
    assert {env for _scope, env in cells} == {"prod"}
    assert cells[("read-secrets", "prod")] == ["vault / Reader", "vault / Writer"]
    assert cells[("rollback", "prod")] == ["payments-service / Deployerbreak-glass"]
    assert "Approval: Beneficiary's manager → System owner, step-up MFA" in " ".join(texts(svg))
    with pytest.raises(UnknownArgument, match="no environment called “prd”"):
        render_svg("roles-matrix", "prd")


def test_roles_matrix_changes_with_the_catalog(catalog) -> None:
    EntitlementFactory(
        system=SystemFactory(name="ci-runners"),
        environment=catalog["prod"],
        name="Runner admin",
        scopes=["admin"],
    )
    assert _cells(render_svg("roles-matrix", "prod"))[("admin", "prod")] == [
        "ci-runners / Runner admin"
    ]


@pytest.mark.django_db
def test_drawing_the_matrix_takes_the_same_queries_for_more_rows(
    catalog, django_assert_max_num_queries
) -> None:
    with CaptureQueriesContext(connection) as few:
        render_svg("roles-matrix")
    for _ in range(15):
        EntitlementFactory(
            system=SystemFactory(), environment=catalog["prod"], scopes=["deploy", "db-read"]
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        render_svg("roles-matrix")


# --- Hostile names -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_hostile_names_are_escaped_in_every_drawing() -> None:
    prod = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    policy = ApprovalPolicy.objects.create(name=HOSTILE)
    policy.stages.create(position=1, approver_rule=ApproverRule.MANAGER)
    EntitlementFactory(
        system=SystemFactory(name=HOSTILE + "\x01"),
        environment=prod,
        name="<img src=x onerror=alert(2)>",
        policy=policy,
        emergency_capable=True,
    )
    for name, argument in [
        ("roles-matrix", ""),
        ("roles-matrix", "prod"),
        ("approval-chain", "prod"),
    ]:
        svg = render_svg(name, argument)
        parse(svg)  # well formed despite quotes, ampersands and a control character
        assert "<script>" not in svg and "<img" not in svg
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
        assert "<script>alert(1)</script>" in "".join(texts(svg))  # shown, as text


@pytest.mark.django_db
def test_hostile_names_cannot_break_the_mermaid() -> None:
    prod = EnvironmentFactory(name='pr"od --> x', slug="prod", risk_tier=RiskTier.HIGH)
    policy = ApprovalPolicy.objects.create(name=HOSTILE)
    policy.stages.create(position=1, approver_rule=ApproverRule.MANAGER)
    EntitlementFactory(
        system=SystemFactory(name=HOSTILE),
        environment=prod,
        name="end\nclick x call alert()",
        policy=policy,
    )
    statement = re.compile(
        r"^\s*("
        r"flowchart LR|direction LR|end|%%[^\n]*"
        r"|classDef \w+ [\w:#,.\- ]+"
        r"|class [\w,]+ \w+"
        r'|subgraph n_\w+\["[^"]*"\]'
        r'|n_\w+(\["[^"]*"\]|\(\["[^"]*"\]\))'
        r"|n_\w+ --> n_\w+"
        r")$"
    )
    for name, argument in [
        ("roles-matrix", ""),
        ("roles-matrix", "prod"),
        ("approval-chain", "prod"),
    ]:
        source = render_mermaid(name, argument)
        assert source.startswith("flowchart LR\n")
        for line in source.splitlines():
            assert statement.match(line), (name, line)
            if not line.strip().startswith("%%"):
                assert "%%" not in line
        assert "a#quot;b --#gt; c #amp; 'd' #35;quot; #37;#37;{init}#37;#37;" in source
        assert "#lt;script#gt;" in source and "<script>" not in source
        # Every node or edge statement has 0 or 2 quotes: no label ends early.
        assert all(line.count('"') in (0, 2) for line in source.splitlines() if "%%" not in line)


def test_unknown_diagram_is_an_error_the_caller_can_catch() -> None:
    with pytest.raises(UnknownDiagram, match="no diagram called “nope”"):
        render_svg("nope")
    with pytest.raises(UnknownDiagram):
        render_mermaid("nope")
    assert not issubclass(UnknownDiagram, UnknownArgument)
    assert set(DIAGRAMS) == {
        "request-lifecycle",
        "campaign-lifecycle",
        "approval-chain",
        "roles-matrix",
    }


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["roles-matrix", "approval-chain"])
def test_an_empty_catalog_still_draws_and_says_so(name: str) -> None:
    svg = render_svg(name)
    parse(svg)
    words = " ".join(texts(svg))
    if name == "roles-matrix":
        assert "No active entitlement grants any scope here yet." in words
    else:
        assert words.count("No environment has this tier yet") == 4
    assert render_mermaid(name).startswith("flowchart LR\n")
