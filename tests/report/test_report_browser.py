"""The report in a real browser (headless Chromium): it loads without errors or requests, its
filters and links change what is listed, conversations open with their turns, markup in model
text stays text, and a 10,000-conversation report opens within seconds."""

from __future__ import annotations

import time

import pytest
from big_report_run import copy_as_replicates
from report_page import HOSTILE, index_of

import agentsim
from agentsim.cli.main import main

OPEN_SECONDS = 5.0  # a 10,000-conversation report must be usable within this
MAX_BYTES = 20_000_000


def _count_text(page) -> str:
    return page.locator("#pager .count").inner_text()


def _listed(page) -> list[str]:
    return page.locator("#list tr.row").evaluate_all(
        "rows => rows.map(r => r.getAttribute('data-id'))")


def test_loads_without_errors_or_any_request(open_report, plain_run):
    opened = open_report(plain_run / "report.html")
    assert opened.problems() == []
    assert opened.requests == [opened.url]  # the file itself, nothing else
    assert _count_text(opened.page).startswith("20 of 20 conversations")
    assert opened.page.locator("figure svg").count() >= 5


def test_filters_change_what_is_listed(open_report, plain_run):
    rows = index_of(plain_run / "report.html")["rows"]
    page = open_report(plain_run / "report.html").page
    page.select_option("select[data-filter-name=variant]", "mirror")
    mirrors = {r["id"] for r in rows if r["variant"] == "mirror"}
    assert _count_text(page).startswith(f"{len(mirrors)} of 20")
    assert set(_listed(page)) == mirrors
    page.select_option("select[data-filter-name=variant]", "")
    page.select_option("select[data-filter-name=outcome]", "stereotyped_last")
    stereotyped = {r["id"] for r in rows if "stereotyped_last" in r["outcomes"]}
    assert 0 < len(stereotyped) < 20
    assert set(_listed(page)) == stereotyped


def test_overview_numbers_link_to_their_conversations(open_report, plain_run):
    rows = index_of(plain_run / "report.html")["rows"]
    page = open_report(plain_run / "report.html").page
    page.locator('#headlines a[data-filter="outcome=stereotyped_last"]').first.click()
    stereotyped = {r["id"] for r in rows if "stereotyped_last" in r["outcomes"]}
    assert set(_listed(page)) == stereotyped
    assert page.locator("select[data-filter-name=outcome]").input_value() == "stereotyped_last"
    page.locator('#scenarios a[data-filter="scenario=restaurant-reopening"]').first.click()
    assert set(_listed(page)) == {r["id"] for r in rows
                                  if r["scenario"] == "restaurant-reopening"}


def test_a_conversation_opens_with_its_turns(open_report, plain_run):
    page = open_report(plain_run / "report.html").page
    cid = _listed(page)[0]
    page.locator(f'#list a.open[href="#c={cid}"]').click()
    page.wait_for_selector(".conversation")
    messages = agentsim.open_run(plain_run).frame("messages")
    expected = list(messages[messages.conversation_id == cid].content)
    shown = page.locator(".conversation .item.message .content").all_inner_texts()
    assert shown == expected
    assert page.locator(".conversation table.rounds td").count() > 0  # decisions per round
    assert page.locator(".conversation table.verdicts tbody tr").count() > 0
    assert "heard by everyone" in page.locator(".conversation .item.message .meta").first \
        .inner_text()


def test_markup_in_model_text_is_shown_and_never_run(open_report, hostile_run):
    opened = open_report(hostile_run / "report.html")
    page = opened.page
    page.locator("#list a.open").first.click()
    page.wait_for_selector(".conversation")
    assert page.locator(".item.message .content").first.inner_text() == HOSTILE
    page.wait_for_timeout(300)  # an image's error handler would have run by now
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("#detail img, #detail script").count() == 0
    assert opened.problems() == [] and opened.requests == [opened.url]


def test_counterfactual_variants_side_by_side(open_report, plain_run):
    rows = index_of(plain_run / "report.html")["rows"]
    base = next(r for r in rows if r["variant"] == "base" and any(
        o["variant"] == "mirror" and o["scenario"] == r["scenario"] for o in rows))
    page = open_report(plain_run / "report.html").page
    page.evaluate(f"location.hash = '#c={base['id']}'")
    page.wait_for_selector(".conversation")
    page.locator("button.side", has_text="mirror").click()
    page.wait_for_selector(".side-by-side")
    differing = page.locator(".side-by-side tr.differs").count()
    summary = page.locator(".side-by-side p.meta").inner_text()
    assert summary.startswith(f"{differing} of ")
    assert differing > 0 and page.locator(".side-by-side mark").count() > 0  # names swapped


def test_a_fork_marks_the_turns_of_its_parent(open_report, fork_run):
    page = open_report(fork_run / "report.html").page
    page.locator("#list a.open").first.click()
    page.wait_for_selector(".conversation")
    metas = page.locator(".conversation .item .meta").all_inner_texts()
    inherited = [m for m in metas if "from parent" in m]
    assert inherited and len(inherited) < len(metas)
    assert all(m.startswith(("turn 0", "turn 1")) for m in inherited)


def test_compare_report_filters_by_arm(open_report, compare_run):
    opened = open_report(compare_run / "report.html")
    page = opened.page
    assert opened.problems() == []
    page.select_option("select[data-filter-name=arm]", "self_reflection")
    assert all(cid.split(".")[2] == "self_reflection" for cid in _listed(page))
    page.select_option("select[data-filter-name=outcome]", "changed_after_reflection")
    assert _listed(page), "the scripted model changes some decisions after reflection"


def test_study_report_shows_its_design_and_filters_by_model_and_setting(open_report,
                                                                        study_run):
    opened = open_report(study_run / "report.html")
    page = opened.page
    assert opened.problems() == []
    study = page.locator("table.study").inner_text()
    assert "two-models" in study and "the second model is more biased" in study
    cells = page.locator("table.cells tbody tr")
    assert cells.count() == 4  # 2 models x 2 settings, each judged alone
    rows = index_of(study_run / "report.html")["rows"]
    page.select_option("select[data-filter-name=model]", "hi")
    page.select_option("select[data-filter-name=setting]", "goal")
    expected = {r["id"] for r in rows if r["model"] == "hi" and r["setting"] == "goal"}
    assert expected and set(_listed(page)) == expected
    page.select_option("select[data-filter-name=model]", "")
    page.select_option("select[data-filter-name=setting]", "")
    # A cell's count links to that cell's conversations.
    page.locator("table.cells tbody tr").nth(3).locator("a.filter").first.click()
    listed = set(_listed(page))
    cells = {(r["model"], r["setting"]) for r in rows if r["id"] in listed}
    assert len(cells) == 1 and len(listed) == sum(
        1 for r in rows if (r["model"], r["setting"]) == next(iter(cells)))
    assert page.locator("#fig-forest svg").count() == 1  # the models' and settings' deltas


@pytest.fixture(scope="module")
def big_run(tmp_path_factory, plain_run):
    """10,000 conversations: the plain run's 20 copied as 500 replicates, then judged (which
    writes the report, as a judged run's folder always gets one)."""
    out = tmp_path_factory.mktemp("big") / "run"
    assert copy_as_replicates(plain_run, out, 500) == 10_000
    started = time.perf_counter()
    assert main(["judge", str(out)]) == 0
    print(f"judged and reported 10,000 conversations in {time.perf_counter() - started:.1f} s")
    return out


def test_ten_thousand_conversations_open_within_seconds(open_report, big_run):
    path = big_run / "report.html"
    size = path.stat().st_size
    opened = open_report(path)
    page = opened.page
    print(f"10,000-conversation report: {size / 1e6:.1f} MB, ready in {opened.seconds:.2f} s")
    assert size < MAX_BYTES
    assert opened.seconds < OPEN_SECONDS
    assert opened.problems() == [] and opened.requests == [opened.url]
    assert _count_text(page).startswith("10000 of 10000 conversations; page 1 of 200")
    assert len(_listed(page)) == 50
    page.locator("#pager button", has_text="next").click()
    assert "page 2 of 200" in _count_text(page)
    last = index_of(path)["rows"][-1]["id"]  # its details sit in the last chunk
    started = time.perf_counter()
    page.evaluate(f"location.hash = '#c={last}'")
    page.wait_for_selector(".conversation .item.message")
    print(f"opened a conversation of the last chunk in {time.perf_counter() - started:.2f} s")
    assert page.locator(".conversation h3").inner_text().startswith(last)
