"""Contacts under parallel requests on one account, over real HTTP with real parallel
connections: the 100-contact limit holds when many creations race for the last places, and
concurrent bill-to / sold-to switches never lose or duplicate a contact."""

import asyncio
import random
from typing import Any
from urllib.parse import quote

from tests.helpers import ApiClient, account_body


async def _contacts_of(api: ApiClient, account_id: str) -> list[dict[str, Any]]:
    """Every contact of the account, as Object Query pages them."""
    found: list[dict[str, Any]] = []
    query = f"/object-query/contacts?filter[]=accountId.EQ:{account_id}&pageSize=50"
    cursor = ""
    while True:
        _, page = await api.call("GET", query + (f"&cursor={quote(cursor)}" if cursor else ""))
        found.extend(page["data"])
        cursor = page.get("nextPage") or ""
        if not cursor:
            return found


async def _add(api: ApiClient, account_id: str, n: int) -> tuple[int, dict[str, Any]]:
    return await api.call(
        "POST",
        "/v1/contacts",
        {"accountId": account_id, "firstName": f"C{n}", "lastName": "Parallel"},
        expect=None,
    )


async def test_racing_creations_never_pass_the_contact_limit(live_api: ApiClient) -> None:
    account = await live_api.ok("POST", "/v1/accounts", account_body(name="Crowded"))
    account_id = account["accountId"]
    for n in range(95):  # with the one contact it was created with (bill-to and sold-to): 96
        status, answer = await _add(live_api, account_id, n)
        assert status == 200 and answer["success"] is True, answer
    results = await asyncio.gather(*(_add(live_api, account_id, 100 + n) for n in range(12)))
    accepted = [answer for status, answer in results if answer["success"] is True]
    refused = [answer for status, answer in results if answer["success"] is False]
    assert len(accepted) == 4, results
    assert all(status == 200 for status, _ in results)
    assert all("100 contacts" in str(answer["reasons"]) for answer in refused)
    contacts = await _contacts_of(live_api, account_id)
    assert len(contacts) == 100


async def test_concurrent_role_switches_keep_every_contact_once(live_api: ApiClient) -> None:
    account = await live_api.ok(
        "POST",
        "/v1/accounts",
        account_body(name="Switching", soldToContact={"firstName": "Grace", "lastName": "Hopper"}),
    )
    account_id = account["accountId"]
    added = [(await _add(live_api, account_id, n))[1]["id"] for n in range(6)]
    before = {c["id"] for c in await _contacts_of(live_api, account_id)}
    assert len(before) == 8
    chooser = random.Random(7)

    async def switch() -> dict[str, Any]:
        role = chooser.choice(["billToContactId", "soldToContactId"])
        _, answer = await live_api.call(
            "PUT", f"/v1/accounts/{account_id}", {role: chooser.choice(added)}, expect=None
        )
        return answer

    answers = await asyncio.gather(*(switch() for _ in range(24)))
    assert all(answer["success"] is True for answer in answers), answers
    after = [c["id"] for c in await _contacts_of(live_api, account_id)]
    assert sorted(after) == sorted(before)  # each contact once, none lost
    read = await live_api.ok("GET", f"/v1/accounts/{account_id}")
    roles = {read["billToContact"]["id"], read["soldToContact"]["id"]}
    assert roles <= before
    for contact_id in before - roles:
        contact = await live_api.ok("GET", f"/v1/contacts/{contact_id}")
        assert (contact["asBillTo"], contact["asSoldTo"]) == (False, False)
