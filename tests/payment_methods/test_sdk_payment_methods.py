"""External payment methods through the official Zuora Python SDK (zuora-sdk) against the live
server over real HTTP: create (first one default, makeDefault moves it), read, list per account,
the account's default, delete, a payment naming its method, and the refusal of gateway types."""

import pytest
from zuora_sdk import (
    CreateAccountContact,
    CreateAccountRequest,
    CreateOpenPaymentMethod,
    CreatePaymentMethodRequest,
    CreatePaymentRequest,
    UpdateOpenPaymentMethod,
    UpdatePaymentMethodRequest,
)
from zuora_sdk.exceptions import ApiException
from zuora_sdk.zuora_client import ZuoraClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:zuora_sdk")


def new_account(zc: ZuoraClient) -> str:
    created = zc.accounts_api().create_account(
        CreateAccountRequest(
            name="Payer",
            currency="USD",
            bill_to_contact=CreateAccountContact(first_name="Ada", last_name="Lovelace"),
        )
    )
    assert created.success is True, created
    return str(created.account_id)


def create(zc: ZuoraClient, account_id: str, kind: str, *, make_default: bool = False) -> str:
    created = zc.payment_methods_api().create_payment_method(
        CreatePaymentMethodRequest(
            CreateOpenPaymentMethod(type=kind, account_key=account_id, make_default=make_default)
        )
    )
    assert created.success is True, created
    assert created.id
    return str(created.id)


def test_external_payment_methods_and_the_account_default(zc: ZuoraClient) -> None:
    account_id = new_account(zc)
    methods = zc.payment_methods_api()
    accounts = zc.accounts_api()

    check = create(zc, account_id, "Check")
    got = methods.get_payment_method(check)
    assert got.id == check
    assert got.type == "Check"
    assert got.status == "Active"
    assert got.is_default is True  # an account's first payment method is its default

    cod = create(zc, account_id, "CashOnDelivery")
    assert methods.get_payment_method(cod).is_default is False
    listed = accounts.get_account_payment_methods(account_id)
    assert listed.default_payment_method_id == check
    assert [m.id for m in listed.returned_payment_method_type] == sorted([check, cod])

    other = create(zc, account_id, "Other", make_default=True)
    assert accounts.get_account_default_payment_method(account_id).id == other
    assert methods.get_payment_method(check).is_default is False

    # makeDefault on update: the UpdateOpenPaymentMethod model has no such field, so it rides
    # in the model's additional properties, which the SDK sends as written.
    update = UpdateOpenPaymentMethod()
    update.additional_properties = {"makeDefault": True}
    updated = methods.update_payment_method(cod, UpdatePaymentMethodRequest(update))
    assert updated.success is True
    assert accounts.get_account_default_payment_method(account_id).id == cod

    # The default cannot be deleted; another one can, and is gone afterwards.
    # A business-rule refusal answers 200 with success false, as Zuora does.
    refused = methods.delete_payment_method(cod)
    assert refused.success is False
    assert "default" in str(refused.reasons)
    assert methods.get_payment_method(cod).is_default is True
    deleted = methods.delete_payment_method(check)
    assert deleted.success is True
    with pytest.raises(ApiException) as gone:
        methods.get_payment_method(check)
    assert gone.value.status == 404
    listed = accounts.get_account_payment_methods(account_id)
    assert sorted(m.id for m in listed.returned_payment_method_type) == sorted([cod, other])


def test_gateway_types_are_refused_and_write_nothing(zc: ZuoraClient) -> None:
    account_id = new_account(zc)
    for kind in ("CreditCard", "ACH", "PayPalEC"):
        try:
            answer = zc.payment_methods_api().create_payment_method(
                CreatePaymentMethodRequest(
                    CreateOpenPaymentMethod(type=kind, account_key=account_id)
                )
            )
        except ApiException as error:
            body = str(error.body)
        else:
            assert answer.success is False
            body = str(answer.reasons)
        assert "gateway" in body
        assert "30" in body
    listed = zc.accounts_api().get_account_payment_methods(account_id)
    assert not listed.returned_payment_method_type
    with pytest.raises(ApiException) as no_default:
        zc.accounts_api().get_account_default_payment_method(account_id)
    assert no_default.value.status == 404


def test_unknown_account_and_unknown_method(zc: ZuoraClient) -> None:
    with pytest.raises(ApiException) as unknown:
        zc.payment_methods_api().get_payment_method("0" * 32)
    assert unknown.value.status == 404
    with pytest.raises(ApiException) as no_account:
        create(zc, "no-such-account", "Check")
    assert no_account.value.status == 404


def test_a_payment_names_the_payment_method_it_was_made_with(zc: ZuoraClient) -> None:
    account_id = new_account(zc)
    check = create(zc, account_id, "Check")
    payments = zc.payments_api()
    paid = payments.create_payment(
        CreatePaymentRequest(
            account_id=account_id,
            amount=12.5,
            currency="USD",
            type="External",
            payment_method_id=check,
        )
    )
    assert paid.success is True, paid
    read = payments.get_payment(paid.id)
    assert read.payment_method_id == check
    assert read.additional_properties["paymentMethodType"] == "Check"

    stranger = create(zc, new_account(zc), "Cash")
    with pytest.raises(ApiException) as refused:
        payments.create_payment(
            CreatePaymentRequest(
                account_id=account_id,
                amount=1,
                currency="USD",
                type="External",
                payment_method_id=stranger,
            )
        )
    assert refused.value.status == 400
    assert "paymentMethodId" in str(refused.value.body)
