"""My reviews: a reviewer's recertification items by campaign, decided one by one or in bulk."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.forms import BulkCertifyForm, ReassignForm, ReviewDecideForm, ReviewFilterForm
from accessreq.forms.reviews import filter_query
from accessreq.models import ReviewItem, RiskTier
from accessreq.reviews import (
    CampaignProgress,
    ReviewRow,
    campaign_progress,
    filter_choices,
    reassign_candidates,
    review_rows,
    reviewer_items,
)
from accessreq.services.campaigns import (
    item_decide,
    item_needs_step_up,
    item_reassign,
    items_bulk_certify,
)
from accessreq.services.common import MfaContext, now
from portal.auth import signed_in_user
from portal.models import User
from portal.services.mfa import mfa_fresh_until, mfa_is_fresh, mfa_verify

PER_PAGE = 50
# People offered as suggestions when handing an item on; anyone else can still be typed.
PEOPLE_LISTED = 500
STEP_UP_PROMPT = (
    "High and critical access needs a fresh second factor: enter a code from your "
    "authenticator app."
)


@dataclass
class RowForms:
    """A row with its three forms, bound (with errors) for the row whose action just failed."""

    row: ReviewRow
    certify: ReviewDecideForm
    revoke: ReviewDecideForm
    reassign: ReassignForm
    show_code: bool

    @property
    def revoke_open(self) -> bool:
        return self.revoke.is_bound

    @property
    def reassign_open(self) -> bool:
        return self.reassign.is_bound


@dataclass
class CampaignGroup:
    """The rows of one campaign on the current page."""

    progress: CampaignProgress
    rows: list[RowForms]


@dataclass
class Failure:
    """The form that was refused, for which item, and whether to insist on a code."""

    form: forms.Form
    item_id: int | None = None
    force_code: bool = False


def _reviews_url(query: str) -> str:
    url = reverse("my_reviews")
    return f"{url}?{query}" if query else url


def _page_number(query: QueryDict) -> int | None:
    page = query.get("page", "")
    return int(page) if page.isdigit() and len(page) < 7 else None


def _filters_of(query: QueryDict, user: User, progress: list[CampaignProgress]) -> ReviewFilterForm:
    systems, teams = filter_choices(user)
    campaigns = [(p.campaign.pk, str(p.campaign)) for p in progress]
    return ReviewFilterForm(
        query if query else None, systems=systems, teams=teams, campaigns=campaigns
    )


def _back_of(form: forms.Form) -> QueryDict:
    """The list's query string posted back with a form (re-validated before any use)."""
    raw = form.data.get("back", "") if form.is_bound else ""
    return QueryDict(str(raw)[:1000])


def _back_url(request: HttpRequest, form: forms.Form) -> str:
    """Where to go after a POST: the list with the same valid filters and page."""
    user = signed_in_user(request)
    back = _back_of(form)
    if not back:
        return _reviews_url("")
    form_ = _filters_of(back, user, campaign_progress(user, at=now()))
    if not form_.is_valid():
        return _reviews_url("")
    return _reviews_url(filter_query(form_.filters(), _page_number(back)))


def render_reviews(
    request: HttpRequest,
    *,
    query: QueryDict,
    failure: Failure | None = None,
    selected: frozenset[int] = frozenset(),
    status: int = 200,
) -> HttpResponse:
    """The reviews page for ``query`` (the filters and page); ``failure`` re-shows a refused
    form with its errors, on its row or on the bulk bar."""
    user = signed_in_user(request)
    at = now()
    progress = campaign_progress(user, at=at)
    filter_form = _filters_of(query, user, progress)
    filters = filter_form.filters()
    page = Paginator(reviewer_items(user, filters), PER_PAGE).get_page(_page_number(query))
    fresh = mfa_is_fresh(request)
    back = filter_query(filters, page.number)
    by_campaign = {p.campaign.pk: p for p in progress}
    failed_id = failure.item_id if failure else None

    groups: list[CampaignGroup] = []
    shown: set[int] = set()
    for row in review_rows(page.object_list, reviewer=user, at=at):
        if row.decidable:
            shown.add(row.item.pk)
        forms_ = _row_forms(row, back=back, user=user, fresh=fresh, failure=failure)
        if not groups or groups[-1].progress.campaign.pk != row.item.campaign_id:
            groups.append(CampaignGroup(progress=by_campaign[row.item.campaign_id], rows=[]))
        groups[-1].rows.append(forms_)
    rows = [r for g in groups for r in g.rows]
    any_bulk = any(r.row.bulk_eligible for r in rows)
    bulk_failed = failure is not None and isinstance(failure.form, BulkCertifyForm)
    if failure is not None and (
        (failed_id is not None and failed_id not in shown) or (bulk_failed and not any_bulk)
    ):
        # The form is not on this page (another page, filtered out, or decided meanwhile):
        # still say what went wrong.
        for errors in failure.form.errors.values():
            for error in errors:
                messages.error(request, str(error))
    bulk_form = (
        failure.form
        if failure is not None and isinstance(failure.form, BulkCertifyForm)
        else BulkCertifyForm(auto_id="bulk-%s", initial={"back": back})
    )
    context = {
        "page": page,
        "groups": groups,
        "current": [p for p in progress if not p.is_past],
        "past": [p for p in progress if p.is_past],
        "filter_form": filter_form,
        "filtered": filters.narrowed,
        "query": filter_query(filters),
        "back": back,
        "fresh": fresh,
        "fresh_until": mfa_fresh_until(request),
        "bulk_form": bulk_form,
        "any_bulk": any_bulk,
        "bulk_code": any_bulk
        and (
            not fresh
            and any(r.row.bulk_eligible and r.row.needs_step_up for r in rows)
            or bulk_form.errors.get("code") is not None
        ),
        "any_per_item": any(r.row.decidable and r.row.per_item_only for r in rows),
        "any_code": any(r.show_code for r in rows),
        "selected": selected,
        "people": reassign_candidates(user, limit=PEOPLE_LISTED) if rows else [],
        "now": at,
    }
    if filter_form.errors and status == 200:
        status = 400
    return render(request, "accessreq/reviews/my_reviews.html", context, status=status)


def _row_forms(
    row: ReviewRow, *, back: str, user: User, fresh: bool, failure: Failure | None
) -> RowForms:
    pk = row.item.pk
    certify = ReviewDecideForm(
        auto_id=f"certify-{pk}-%s", initial={"decision": "certified", "back": back}
    )
    revoke = ReviewDecideForm(
        auto_id=f"revoke-{pk}-%s", initial={"decision": "revoked", "back": back}
    )
    reassign = ReassignForm(auto_id=f"reassign-{pk}-%s", initial={"back": back}, reviewer=user)
    force_code = False
    if failure is not None and failure.item_id == pk:
        force_code = failure.force_code
        if isinstance(failure.form, ReassignForm):
            reassign = failure.form
        elif isinstance(failure.form, ReviewDecideForm):
            if failure.form.data.get("decision") == "revoked":
                revoke = failure.form
            else:
                certify = failure.form
    show_code = row.needs_step_up and (not fresh or force_code)
    return RowForms(row=row, certify=certify, revoke=revoke, reassign=reassign, show_code=show_code)


@require_GET
def my_reviews(request: HttpRequest) -> HttpResponse:
    """The signed-in reviewer's items, grouped by campaign, filtered, a page at a time."""
    return render_reviews(request, query=request.GET)


def _my_item(user: User, item_id: int) -> ReviewItem:
    """One of the reviewer's own items; anyone else's id is a 404."""
    return get_object_or_404(
        ReviewItem.objects.for_reviewer(user).select_related("campaign"), pk=item_id
    )


def _open_for_decision(item: ReviewItem) -> bool:
    return item.decision == ReviewDecision.PENDING and item.campaign.state == CampaignState.OPEN


@require_POST
def review_decide(request: HttpRequest, item_id: int) -> HttpResponse:
    """Certify or revoke one item; a step-up code typed inline is verified first."""
    user = signed_in_user(request)
    item = _my_item(user, item_id)
    decision = request.POST.get("decision")
    prefix = "revoke" if decision == "revoked" else "certify"
    form = ReviewDecideForm(request.POST, auto_id=f"{prefix}-{item_id}-%s")
    if not form.is_valid():
        return render_reviews(
            request,
            query=_back_of(form),
            failure=Failure(form, item_id),
            status=400,
        )
    data = form.cleaned_data
    if data["code"] and _open_for_decision(item) and item_needs_step_up(item):
        result = mfa_verify(request=request, user=user, code=data["code"])
        if not result.ok:
            form.add_error("code", result.error)
            return render_reviews(
                request,
                query=_back_of(form),
                failure=Failure(form, item_id, force_code=True),
                status=429 if result.retry_after else 400,
            )
    try:
        decided = item_decide(
            actor=user,
            item_id=item_id,
            decision=data["decision"],
            comment=data["comment"],
            mfa=MfaContext.from_request(request),
            http=request,
        )
    except NotAllowed:
        raise Http404 from None
    except StepUpRequired as exc:
        form.add_error("code", str(exc))
        return render_reviews(
            request,
            query=_back_of(form),
            failure=Failure(form, item_id, force_code=True),
            status=400,
        )
    except WorkflowError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(_back_url(request, form))
    what = f"{decided.snapshot.get('holder')} / {decided.snapshot.get('entitlement')}"
    if decided.decision == ReviewDecision.REVOKED:
        messages.success(
            request, f"Revoked {what}. The access is being removed and the holder is told why."
        )
    else:
        messages.success(request, f"Certified {what}.")
    return HttpResponseRedirect(_back_url(request, form))


@require_POST
def review_reassign(request: HttpRequest, item_id: int) -> HttpResponse:
    """Hand one item to another person with a reason."""
    user = signed_in_user(request)
    item = _my_item(user, item_id)
    form = ReassignForm(request.POST, auto_id=f"reassign-{item_id}-%s", reviewer=user)
    if not form.is_valid():
        return render_reviews(
            request, query=_back_of(form), failure=Failure(form, item_id), status=400
        )
    to: User = form.cleaned_data["to"]
    try:
        item_reassign(
            actor=user,
            item_id=item.pk,
            to=to,
            reason=form.cleaned_data["reason"],
            http=request,
        )
    except NotAllowed:
        raise Http404 from None
    except WorkflowError as exc:
        if _open_for_decision(item):
            # Something about the person chosen: let the reviewer pick someone else.
            form.add_error("to", str(exc))
            return render_reviews(
                request, query=_back_of(form), failure=Failure(form, item_id), status=400
            )
        messages.error(request, str(exc))
        return HttpResponseRedirect(_back_url(request, form))
    messages.success(
        request,
        f"Handed {item.snapshot.get('holder')} / {item.snapshot.get('entitlement')} to {to}; "
        "they have been told by email.",
    )
    return HttpResponseRedirect(_back_url(request, form))


@require_POST
def reviews_bulk_certify(request: HttpRequest) -> HttpResponse:
    """Certify the ticked items, each on its own; critical ones the template wants decided one
    by one are refused by name. One code covers the lot when any of them needs a step-up."""
    user = signed_in_user(request)
    form = BulkCertifyForm(request.POST, auto_id="bulk-%s")
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return HttpResponseRedirect(_back_url(request, form))
    ids: list[int] = form.cleaned_data["items"]
    mine = {
        item.pk: item
        for item in ReviewItem.objects.for_reviewer(user)
        .filter(pk__in=ids)
        .select_related("campaign__template")
    }
    if len(mine) != len(ids):
        raise Http404
    needs_code = any(
        _open_for_decision(item)
        and item_needs_step_up(item)
        and not (item.tier == RiskTier.CRITICAL and item.campaign.template.critical_per_item)
        for item in mine.values()
    )
    if needs_code and not mfa_is_fresh(request):
        code = form.cleaned_data["code"]
        if not code:
            form.add_error("code", STEP_UP_PROMPT)
            return _bulk_refused(request, form, ids, status=400)
        result = mfa_verify(request=request, user=user, code=code)
        if not result.ok:
            form.add_error("code", result.error)
            return _bulk_refused(request, form, ids, status=429 if result.retry_after else 400)
    done, refusals = items_bulk_certify(
        actor=user, item_ids=ids, mfa=MfaContext.from_request(request), http=request
    )
    if done:
        messages.success(request, f"Certified {len(done)} item{'s' if len(done) != 1 else ''}.")
    for refusal in refusals:
        messages.error(request, refusal)
    return HttpResponseRedirect(_back_url(request, form))


def _bulk_refused(
    request: HttpRequest, form: BulkCertifyForm, ids: list[int], *, status: int
) -> HttpResponse:
    """Nothing was certified: show the page again with the same items ticked and the code field."""
    return render_reviews(
        request,
        query=_back_of(form),
        failure=Failure(form, None, force_code=True),
        selected=frozenset(ids),
        status=status,
    )
