"""Documented answers of the credit- and debit-memo routes (OpenAPI only; see `core.responses`)."""

from datetime import date

from partnerbill.core.responses import Documented, Money, Succeeded


class Memo(Succeeded):
    id: str
    number: str
    accountId: str
    accountNumber: str
    amount: Money
    taxAmount: Money
    status: str
    referredInvoiceId: str | None = None
    sourceType: str
    reasonCode: str | None = None
    comment: str | None = None
    currency: str
    postedOn: str | None = None


class CreditMemo(Memo):
    creditMemoDate: date
    appliedAmount: Money
    refundAmount: Money
    unappliedAmount: Money


class DebitMemo(Memo):
    debitMemoDate: date
    dueDate: date | None = None
    balance: Money


class CreditMemos(Succeeded):
    creditmemos: list[CreditMemo]
    nextPage: str | None = None


class DebitMemos(Succeeded):
    debitmemos: list[DebitMemo]
    nextPage: str | None = None


class MemoItem(Documented):
    id: str
    amount: Money
    amountWithoutTax: Money | None = None
    taxAmount: Money | None = None
    skuName: str | None = None
    description: str | None = None
    quantity: Money | None = None
    serviceStartDate: date | None = None
    serviceEndDate: date | None = None
    sourceItemId: str | None = None
    sourceItemType: str | None = None
    productRatePlanChargeId: str | None = None


class MemoItemAnswer(Succeeded, MemoItem):
    pass


class MemoItems(Succeeded):
    items: list[MemoItem]
    nextPage: str | None = None


# By the routes' list key, as the routes are built per memo kind.
MEMO: dict[str, type[Memo]] = {"creditmemos": CreditMemo, "debitmemos": DebitMemo}
MEMO_LIST: dict[str, type[Succeeded]] = {"creditmemos": CreditMemos, "debitmemos": DebitMemos}


class WrittenOffMemo(Documented):
    id: str


class WrittenOff(Succeeded):
    """A write-off's answer: the credit memo that wrote the document off."""

    creditMemo: WrittenOffMemo
