"""Contacts by id through the official Zuora Python SDK (zuora-sdk) against the live server over
real HTTP: read an account's bill-to and sold-to contacts, edit one (a shared one in both roles),
and the refusal to delete a bill-to or sold-to contact."""

import pytest
from zuora_sdk import CreateAccountContact, CreateAccountRequest, UpdateContactRequest
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
