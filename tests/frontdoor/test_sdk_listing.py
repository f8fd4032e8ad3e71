"""Listing and cursor pagination through the openai SDK (spec §2.3, §8 tests 8 to 11).

Runs under openai 3.x (httpx2 inside) and 2.x (httpx inside): requests are counted with an
event hook on `openai.DefaultHttpxClient`, which is a client of whichever package the SDK uses.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from tests.servers import FileDockServer

FILE_COUNT = 250
BATCH_EVERY = 5  # every fifth file is a batch file, so a purpose filter has something to find
# One worker and no fsync: durability is not under test, and 250 uploads should take a second or two.
QUICK = {"fsync": "false", "workers": "1"}


@dataclass
class CountingClient:
    """An SDK client that records the URL of every HTTP request it sends."""

    sdk: openai.OpenAI
    urls: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def listing_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileDockServer]:
    """A private server: these tests need to know every file in the store."""
    server = FileDockServer(tmp_path_factory.mktemp("listing") / "data", QUICK).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def created(listing_server: FileDockServer) -> list[Any]:
    """250 files made one after another as fast as possible, so many share a `created_at` second."""
    with openai.OpenAI(base_url=listing_server.openai_url, api_key="k", max_retries=0) as sdk:
        files = [
            sdk.files.create(file=(f"f{i}.jsonl", b'{"i": 1}\n'), purpose="batch")
            if i % BATCH_EVERY == 0
            else sdk.files.create(file=(f"f{i}.txt", b"x"), purpose="user_data")
            for i in range(FILE_COUNT)
        ]
    seconds = [f.created_at for f in files]
    # Over 20 in one second, so ordering by time alone would be ambiguous. PostgreSQL and S3 make
    # ~90 files a second on 2 cores; with make test's groups running side by side, fewer.
    assert max(seconds.count(s) for s in seconds) > 20, "the order must rest on creation order, not time"
    return files


@pytest.fixture
def counting(listing_server: FileDockServer) -> Iterator[CountingClient]:
    urls: list[str] = []
    http_client = openai.DefaultHttpxClient(
        event_hooks={"request": [lambda request: urls.append(str(request.url))]}
    )
    with openai.OpenAI(
        base_url=listing_server.openai_url, api_key="k", max_retries=0, http_client=http_client
    ) as sdk:
        yield CountingClient(sdk, urls)


def newest_first(files: list[Any]) -> list[str]:
    """Ids in `(created_at, creation order)` descending order: the default list order."""
    ranked = sorted(enumerate(files), key=lambda pair: (pair[1].created_at, pair[0]), reverse=True)
    return [f.id for _, f in ranked]


def test_list_auto_pagination_yields_each_file_once_newest_first(
    counting: CountingClient, created: list[Any]
) -> None:
    assert [f.id for f in counting.sdk.files.list(limit=100)] == newest_first(created)


def test_list_auto_pagination_of_250_takes_three_requests(
    counting: CountingClient, created: list[Any]
) -> None:
    pages = list(counting.sdk.files.list(limit=100).iter_pages())
    assert [len(page.data) for page in pages] == [100, 100, 50]
    assert len(counting.urls) == 3


def test_list_auto_pagination_sends_the_last_id_as_after(
    counting: CountingClient, created: list[Any]
) -> None:
    expected = newest_first(created)
    list(counting.sdk.files.list(limit=100))
    assert f"after={expected[99]}" in counting.urls[1]
    assert f"after={expected[199]}" in counting.urls[2]


def test_list_order_asc_is_the_exact_reverse(counting: CountingClient, created: list[Any]) -> None:
    ascending = [f.id for f in counting.sdk.files.list(limit=100, order="asc")]
    assert ascending == newest_first(created)[::-1]
    assert len(counting.urls) == 3


@pytest.mark.parametrize("order", [pytest.param("desc", id="desc"), pytest.param("asc", id="asc")])
def test_list_pages_report_first_and_last_ids(
    counting: CountingClient, created: list[Any], order: str
) -> None:
    pages = list(counting.sdk.files.list(limit=100, order=order).iter_pages())  # type: ignore[arg-type]
    assert len(pages) == 3
    for page in pages:
        extra = page.model_extra or {}
        assert extra["first_id"] == page.data[0].id
        assert extra["last_id"] == page.data[-1].id


def test_list_last_page_has_more_is_false(counting: CountingClient, created: list[Any]) -> None:
    pages = list(counting.sdk.files.list(limit=100).iter_pages())
    assert [page.has_more for page in pages] == [True, True, False]


def test_list_without_limit_returns_everything_in_one_page(
    counting: CountingClient, created: list[Any]
) -> None:
    page = counting.sdk.files.list()
    assert [f.id for f in page.data] == newest_first(created)
    assert page.has_more is False
    assert [f.id for f in page] == newest_first(created)
    assert len(counting.urls) == 1


def test_list_purpose_filter_returns_only_that_purpose(counting: CountingClient, created: list[Any]) -> None:
    batch = [f for f in created if f.purpose == "batch"]
    listed = list(counting.sdk.files.list(purpose="batch", limit=7))
    assert {f.purpose for f in listed} == {"batch"}
    assert [f.id for f in listed] == newest_first(batch)


def test_list_after_a_deleted_cursor_continues_without_gap_or_duplicate(make_server: Any) -> None:
    server: FileDockServer = make_server(**QUICK)
    with openai.OpenAI(base_url=server.openai_url, api_key="k", max_retries=0) as sdk:
        made = [sdk.files.create(file=(f"d{i}.txt", b"x"), purpose="user_data") for i in range(6)]
        expected = newest_first(made)
        first = sdk.files.list(limit=2)
        assert [f.id for f in first.data] == expected[:2]
        sdk.files.delete(first.data[-1].id)
        second = sdk.files.list(after=first.data[-1].id, limit=2)
        assert [f.id for f in second.data] == expected[2:4]
        assert second.has_more is True
