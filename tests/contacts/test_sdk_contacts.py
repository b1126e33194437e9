"""Contacts through the official Zuora Python SDK (zuora-sdk) against the live server over real
HTTP: read an account's bill-to and sold-to contacts, edit one (a shared one in both roles), add
contacts, switch the bill-to / sold-to role to another contact (by contact create and by account
update), transfer, scrub and delete a contact, and the refusals for bill-to and sold-to contacts."""

import pytest
from zuora_sdk import (
    CreateAccountContact,
    CreateAccountRequest,
    CreateContactRequest,
    TransferContactRequest,
    UpdateAccountRequest,
    UpdateContactRequest,
)
from zuora_sdk.exceptions import ApiException
from zuora_sdk.zuora_client import ZuoraClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")


def new_account(zc: ZuoraClient, *, sold_to: bool) -> tuple[str, str]:
    created = zc.accounts_api().create_account(
        CreateAccountRequest(
            name="Contacts",
            currency="USD",
            bill_to_contact=CreateAccountContact(first_name="Ada", last_name="Lovelace"),
            sold_to_contact=(
                CreateAccountContact(first_name="Grace", last_name="Hopper", city="Arlington")
                if sold_to
                else None
            ),
        )
    )
    assert created.success is True, created
    return str(created.account_id), str(created.account_number)


def test_read_and_edit_the_bill_to_and_sold_to_contacts(zc: ZuoraClient) -> None:
    account_id, account_number = new_account(zc, sold_to=True)
    account = zc.accounts_api().get_account(account_id)
    bill_to_id = account.bill_to_contact.id
    sold_to_id = account.sold_to_contact.id
    assert bill_to_id != sold_to_id
    contacts = zc.contacts_api()

    bill_to = contacts.get_contact(bill_to_id)
    assert bill_to.first_name == "Ada"
    assert bill_to.account_id == account_id
    assert bill_to.account_number == account_number
    assert (bill_to.as_bill_to, bill_to.as_sold_to) == (True, False)
    sold_to = contacts.get_contact(sold_to_id)
    assert (sold_to.first_name, sold_to.city) == ("Grace", "Arlington")
    assert (sold_to.as_bill_to, sold_to.as_sold_to) == (False, True)

    edited = contacts.update_contact(
        sold_to_id, UpdateContactRequest(city="Boston", contact_description="Admiral")
    )
    assert edited.success is True, edited
    assert edited.city == "Boston"
    assert edited.first_name == "Grace"  # fields not sent are kept
    again = zc.accounts_api().get_account(account_id)
    assert again.sold_to_contact.city == "Boston"
    assert again.bill_to_contact.first_name == "Ada"  # the other contact is untouched
    assert again.bill_to_contact.city is None


def test_a_shared_contact_is_edited_in_both_roles(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, sold_to=False)
    contact_id = zc.accounts_api().get_account(account_id).bill_to_contact.id
    contact = zc.contacts_api().get_contact(contact_id)
    assert (contact.as_bill_to, contact.as_sold_to) == (True, True)
    zc.contacts_api().update_contact(contact_id, UpdateContactRequest(last_name="Byron"))
    account = zc.accounts_api().get_account(account_id)
    assert account.bill_to_contact.last_name == "Byron"
    assert account.sold_to_contact.last_name == "Byron"


def test_bill_to_and_sold_to_contacts_cannot_be_deleted(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, sold_to=True)
    account = zc.accounts_api().get_account(account_id)
    for contact_id in (account.bill_to_contact.id, account.sold_to_contact.id):
        # A business-rule refusal answers 200 with success false, as Zuora does.
        refused = zc.contacts_api().delete_contact(contact_id)
        assert refused.success is False
        assert "cannot be deleted" in str(refused.reasons)
        assert zc.contacts_api().get_contact(contact_id).id == contact_id


def test_unknown_contact(zc: ZuoraClient) -> None:
    with pytest.raises(ApiException) as unknown:
        zc.contacts_api().get_contact("0" * 32)
    assert unknown.value.status == 404
    with pytest.raises(ApiException) as not_updated:
        zc.contacts_api().update_contact("0" * 32, UpdateContactRequest(city="Nowhere"))
    assert not_updated.value.status == 404


def test_a_new_contact_is_added_read_edited_and_deleted(zc: ZuoraClient) -> None:
    account_id, account_number = new_account(zc, sold_to=True)
    contacts = zc.contacts_api()
    created = contacts.create_contact(
        CreateContactRequest(
            account_number=account_number,
            first_name="Katherine",
            last_name="Johnson",
            work_email="kj@example.com",
            contact_description="Billing analyst",
        )
    )
    assert created.success is True, created
    assert (created.account_id, created.account_number) == (account_id, account_number)
    assert (created.as_bill_to, created.as_sold_to) == (False, False)
    assert created.contact_description == "Billing analyst"
    read = contacts.get_contact(created.id)
    assert (read.first_name, read.work_email) == ("Katherine", "kj@example.com")
    edited = contacts.update_contact(created.id, UpdateContactRequest(city="Hampton"))
    assert (edited.city, edited.last_name) == ("Hampton", "Johnson")
    # The account's own contacts are untouched by another contact.
    account = zc.accounts_api().get_account(account_id)
    assert account.bill_to_contact.first_name == "Ada"
    assert account.sold_to_contact.first_name == "Grace"

    deleted = contacts.delete_contact(created.id)
    assert deleted.success is True, deleted
    with pytest.raises(ApiException) as gone:
        contacts.get_contact(created.id)
    assert gone.value.status == 404


def test_a_new_contact_can_take_the_bill_to_role_and_the_old_one_stays(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, sold_to=True)
    old_bill_to = zc.accounts_api().get_account(account_id).bill_to_contact.id
    created = zc.contacts_api().create_contact(
        CreateContactRequest(
            account_id=account_id, first_name="Mary", last_name="Jackson", as_bill_to=True
        )
    )
    assert created.success is True, created
    assert (created.as_bill_to, created.as_sold_to) == (True, False)
    account = zc.accounts_api().get_account(account_id)
    assert (account.bill_to_contact.id, account.bill_to_contact.first_name) == (
        created.id,
        "Mary",
    )
    assert account.sold_to_contact.first_name == "Grace"
    # The replaced bill-to contact is still the account's contact, now without a role.
    old = zc.contacts_api().get_contact(old_bill_to)
    assert (old.first_name, old.as_bill_to, old.as_sold_to) == ("Ada", False, False)
    assert zc.contacts_api().delete_contact(old_bill_to).success is True


def test_an_account_update_switches_bill_to_and_sold_to_by_contact_id(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, sold_to=False)  # one contact in both roles
    shared = zc.accounts_api().get_account(account_id).bill_to_contact.id
    extra = zc.contacts_api().create_contact(
        CreateContactRequest(account_id=account_id, first_name="Dorothy", last_name="Vaughan")
    )
    updated = zc.accounts_api().update_account(
        account_id, UpdateAccountRequest(sold_to_contact_id=extra.id)
    )
    assert updated.success is True, updated
    account = zc.accounts_api().get_account(account_id)
    assert account.bill_to_contact.id == shared
    assert (account.sold_to_contact.id, account.sold_to_contact.first_name) == (
        extra.id,
        "Dorothy",
    )
    # Both roles to the new contact: the old one keeps no role but stays on the account.
    zc.accounts_api().update_account(account_id, UpdateAccountRequest(bill_to_contact_id=extra.id))
    account = zc.accounts_api().get_account(account_id)
    assert account.bill_to_contact.id == account.sold_to_contact.id == extra.id
    old = zc.contacts_api().get_contact(shared)
    assert (old.as_bill_to, old.as_sold_to) == (False, False)

    other_id, _ = new_account(zc, sold_to=False)
    stranger = zc.accounts_api().get_account(other_id).bill_to_contact.id
    with pytest.raises(ApiException) as refused:
        zc.accounts_api().update_account(
            account_id, UpdateAccountRequest(bill_to_contact_id=stranger)
        )
    assert refused.value.status == 400
    assert "billToContactId" in str(refused.value.body)
    assert zc.accounts_api().get_account(account_id).bill_to_contact.id == extra.id


def test_a_contact_is_transferred_to_another_account(zc: ZuoraClient) -> None:
    source_id, _ = new_account(zc, sold_to=True)
    destination_id, destination_number = new_account(zc, sold_to=True)
    contacts = zc.contacts_api()
    moved = contacts.create_contact(
        CreateContactRequest(account_id=source_id, first_name="Annie", last_name="Easley")
    )
    answer = contacts.transfer_contact(
        moved.id, TransferContactRequest(destination_account_key=destination_number)
    )
    assert answer.success is True, answer
    read = contacts.get_contact(moved.id)
    assert (read.account_id, read.account_number) == (destination_id, destination_number)

    bill_to = zc.accounts_api().get_account(source_id).bill_to_contact.id
    refused = contacts.transfer_contact(
        bill_to, TransferContactRequest(destination_account_key=destination_id)
    )
    assert refused.success is False
    assert "cannot be transferred" in str(refused.reasons)
    assert contacts.get_contact(bill_to).account_id == source_id
    with pytest.raises(ApiException) as missing:
        contacts.transfer_contact(
            moved.id, TransferContactRequest(destination_account_key="no-such-account")
        )
    assert missing.value.status == 404


def test_scrub_replaces_personal_data_and_keeps_the_roles(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, sold_to=True)
    contacts = zc.contacts_api()
    sold_to = zc.accounts_api().get_account(account_id).sold_to_contact.id
    contacts.update_contact(
        sold_to, UpdateContactRequest(work_email="grace@example.com", mobile_phone="555-0100")
    )
    assert contacts.scrub_contact(sold_to).success is True
    scrubbed = contacts.get_contact(sold_to)
    for value in (
        scrubbed.first_name,
        scrubbed.last_name,
        scrubbed.city,
        scrubbed.work_email,
        scrubbed.mobile_phone,
    ):
        assert value == "Scrubbed"
    assert scrubbed.as_sold_to is True
    account = zc.accounts_api().get_account(account_id)
    assert account.sold_to_contact.work_email == "Scrubbed"
    assert account.bill_to_contact.first_name == "Ada"  # the other contact keeps its data

    extra = contacts.create_contact(
        CreateContactRequest(account_id=account_id, first_name="Joan", last_name="Clarke")
    )
    assert contacts.scrub_contact(extra.id).success is True
    assert contacts.get_contact(extra.id).first_name == "Scrubbed"


def test_contact_requests_naming_no_account_or_a_bad_field_are_refused(zc: ZuoraClient) -> None:
    account_id, account_number = new_account(zc, sold_to=True)
    contacts = zc.contacts_api()
    for request, field in (
        (CreateContactRequest(first_name="No", last_name="Account"), "accountId"),
        (
            CreateContactRequest(account_id=account_id, first_name="x" * 101, last_name="Long"),
            "firstName",
        ),
        (
            CreateContactRequest(
                account_id=account_id, first_name="Ship", last_name="To", as_ship_to=True
            ),
            "asShipTo",
        ),
    ):
        with pytest.raises(ApiException) as refused:
            contacts.create_contact(request)
        assert refused.value.status == 400
        assert field in str(refused.value.body)
    with pytest.raises(ApiException) as missing:
        contacts.create_contact(
            CreateContactRequest(account_id="f" * 32, first_name="No", last_name="Such")
        )
    assert missing.value.status == 404
    with pytest.raises(ApiException) as mismatch:
        contacts.create_contact(
            CreateContactRequest(
                account_id=account_id,
                account_number=account_number + "-other",
                first_name="Mis",
                last_name="Match",
            )
        )
    assert mismatch.value.status == 400
    assert "accountNumber" in str(mismatch.value.body)


def test_object_query_lists_every_contact_of_the_account(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, sold_to=True)
    extra = zc.contacts_api().create_contact(
        CreateContactRequest(account_id=account_id, first_name="Hedy", last_name="Lamarr")
    )
    page = zc.object_queries_api().query_contacts(
        filter=[f"accountId.EQ:{account_id}"], fields=["id", "firstName"], page_size=10
    )
    assert sorted(contact.first_name for contact in page.data) == ["Ada", "Grace", "Hedy"]
    by_key = zc.object_queries_api().query_contact_by_key(extra.id, fields=["id", "firstName"])
    assert by_key.first_name == "Hedy"


def test_an_account_holds_at_most_one_hundred_contacts(zc: ZuoraClient) -> None:
    account_id, _ = new_account(zc, sold_to=True)  # two contacts already
    contacts = zc.contacts_api()
    for n in range(98):
        added = contacts.create_contact(
            CreateContactRequest(account_id=account_id, first_name=f"C{n}", last_name="Many")
        )
        assert added.success is True, added
    refused = contacts.create_contact(
        CreateContactRequest(account_id=account_id, first_name="One", last_name="Toomany")
    )
    assert refused.success is False
    assert "100 contacts" in str(refused.reasons)
